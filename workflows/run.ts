// Deterministic workflow code only: what every source's sync workflow does around its own steps.
import { defineQuery, proxyActivities, setHandler, workflowInfo, type RetryPolicy } from '@temporalio/workflow';
import type { SyncActivities } from './activities/index.ts';
import type { SyncInput } from './types.ts';

/** Name of the query every sync workflow answers with its progress (the CLI's progress bar). */
export const PROGRESS_QUERY = 'progress';

const retry = (maximumAttempts = 8): RetryPolicy => ({ initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts });

/** A sync's long activities: heartbeated (input.heartbeatTimeoutSeconds, default 60), retried input.activityAttempts times (default 8). */
export function syncActivities<A extends object>(input: SyncInput): ReturnType<typeof proxyActivities<A>> {
  return proxyActivities<A>({ startToCloseTimeout: '4 hours', heartbeatTimeout: (input.heartbeatTimeoutSeconds ?? 60) * 1000, retry: retry(input.activityAttempts) });
}

/**
 * Runs one sync inside its run row: serves `progress` to the `progress` query (the CLI's progress
 * bar), begins the run, runs `body`, and records the run as succeeded (skipped ones too: set
 * `progress.phase = 'skipped'`) or as failed with the error, which is rethrown.
 */
export async function inSyncRun<P extends { phase: string }, R>(input: SyncInput, progress: P, body: (runId: string) => Promise<R>): Promise<R> {
  setHandler(defineQuery<P>(PROGRESS_QUERY), () => progress);
  const rows = proxyActivities<Pick<SyncActivities, 'beginRun' | 'finishRun'>>({ startToCloseTimeout: '1 minute', retry: retry() });
  const runId = await rows.beginRun(input.connectionId, workflowInfo().workflowId);
  try {
    const result = await body(runId);
    await rows.finishRun(runId, 'succeeded');
    if (progress.phase !== 'skipped') progress.phase = 'done';
    return result;
  } catch (err) {
    await rows.finishRun(runId, 'failed', err instanceof Error ? err.message : String(err));
    throw err;
  }
}
