import { fileURLToPath } from 'node:url';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Env } from '../core/env.ts';
import { createActivities, type ActivityDeps } from './activities/index.ts';

const workflowsPath = fileURLToPath(new URL('./workflows.ts', import.meta.url));

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** The workflow bundle, built once per process (webpack takes a few seconds). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath, logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: (m) => console.error(m) } });
  return bundle;
}

let runtimeInstalled = false;

/** Worker SDK logs at WARN: state changes at INFO drown the CLI's own output. */
function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger(process.env.ASTRY_TEMPORAL_LOG_LEVEL === 'INFO' ? 'INFO' : 'WARN') });
}

/** A sync worker on the configured task queue; call `run()` on it, `shutdown()` to drain. */
export async function createSyncWorker(config: Pick<Env, 'TEMPORAL_ADDRESS' | 'TEMPORAL_NAMESPACE' | 'ASTRY_TASK_QUEUE'>, deps: ActivityDeps): Promise<{ worker: Worker; connection: NativeConnection }> {
  installRuntime();
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.ASTRY_TASK_QUEUE,
    workflowBundle: await workflowBundle(),
    activities: createActivities(deps),
    // Two cores: one activity embeds while another waits on the source API.
    maxConcurrentActivityTaskExecutions: 2,
  });
  return { worker, connection };
}
