import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { env } from '../../core/env.ts';
import { createConnection, ensureWorkspace } from '../../db/connections.ts';
import { getRun, type RunSummary } from '../../db/runs.ts';
import { generateCompany } from '../../fixtures/slack/company.ts';
import { SlackEmulator } from '../../fixtures/slack/emulator.ts';
import { Chunker } from '../../pipeline/chunk.ts';
import { LocalEmbedder } from '../../pipeline/embed.ts';
import { LocalKeyFileProvider } from '../../vault/key-provider.ts';
import type { ActivityDeps } from '../../workflows/activities/index.ts';
import { SYNC_WORKFLOW } from '../../workflows/constants.ts';
import type { SyncInput } from '../../workflows/types.ts';
import { createSyncWorker } from '../../workflows/worker.ts';
import { freshDatabase, type TestDatabase } from './database.ts';

let models: Promise<{ embedder: LocalEmbedder; chunker: Chunker }> | undefined;

/** The real embedding model and chunker, loaded once per test process. */
export function loadModels(): Promise<{ embedder: LocalEmbedder; chunker: Chunker }> {
  const config = env();
  models ??= Promise.all([
    LocalEmbedder.load({ modelDir: config.ASTRY_MODEL_DIR, model: config.ASTRY_EMBED_MODEL, batchSize: config.ASTRY_EMBED_BATCH }),
    Chunker.load(config.ASTRY_MODEL_DIR, config.ASTRY_EMBED_MODEL),
  ]).then(([embedder, chunker]) => ({ embedder, chunker }));
  return models;
}

/** Small Slack retry budget for tests (the SDK default retries for ~30 minutes). */
export const TEST_SLACK_RETRY = { retries: 3, factor: 1, minTimeout: 20, maxTimeout: 200, randomize: false };

/** Real Postgres (fresh database), real Temporal (own task queue), the Slack emulator, the real model. */
export interface SyncHarness {
  db: TestDatabase;
  deps: ActivityDeps;
  emulator: SlackEmulator;
  client: Client;
  taskQueue: string;
  kekFile: string;
  workspaceId: string;
  connectionId: string;
  /** Runs one sync workflow to completion and returns its run row. */
  sync(input?: Partial<SyncInput>): Promise<RunSummary>;
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(opts: { scale?: number; seed?: number; worker?: boolean } = {}): Promise<SyncHarness> {
  const config = env();
  const db = await freshDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'astry-test-'));
  const kekFile = join(dir, 'kek.key');
  const keys = await LocalKeyFileProvider.open(kekFile);
  const { embedder, chunker } = await loadModels();
  const emulator = await SlackEmulator.start(generateCompany({ seed: opts.seed ?? 42, scale: opts.scale ?? 1 }));
  const deps: ActivityDeps = {
    pool: db.pool, keys, embedder, chunker,
    maxFileBytes: 5 * 1024 * 1024, extractTimeoutMs: 20_000, slackRetry: TEST_SLACK_RETRY, batchSize: 16,
  };
  const workspaceId = await ensureWorkspace(db.pool, 'test');
  const connection = await createConnection(db.pool, keys, {
    workspaceId, name: 'slack', source: 'slack', config: { apiUrl: emulator.url }, token: emulator.token,
  });
  const taskQueue = `astry-test-${randomBytes(4).toString('hex')}`;
  const temporal = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection: temporal, namespace: config.TEMPORAL_NAMESPACE });

  let running: { worker: Worker; connection: NativeConnection; done: Promise<void> } | undefined;
  const harness: SyncHarness = {
    db, deps, emulator, client, taskQueue, kekFile, workspaceId, connectionId: connection.id,
    async sync(input = {}) {
      const workflowId = `test-sync-${randomBytes(6).toString('hex')}`;
      await client.workflow.execute(SYNC_WORKFLOW, {
        taskQueue, workflowId, args: [{ heartbeatTimeoutSeconds: 10, ...input, connectionId: connection.id }],
      });
      const run = await getRun(db.pool, workflowId);
      if (!run) throw new Error('no run row');
      return run;
    },
    async startWorker() {
      const { worker, connection: native } = await createSyncWorker(
        { TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE: config.TEMPORAL_NAMESPACE, ASTRY_TASK_QUEUE: taskQueue },
        deps,
      );
      running = { worker, connection: native, done: worker.run() };
    },
    async stopWorker() {
      if (!running) return;
      running.worker.shutdown();
      await running.done;
      await running.connection.close();
      running = undefined;
    },
    async close() {
      await harness.stopWorker();
      await temporal.close();
      await emulator.close();
      await db.drop();
    },
  };
  if (opts.worker ?? true) await harness.startWorker();
  return harness;
}
