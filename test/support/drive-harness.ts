import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { DriveConfig } from '../../connectors/drive/config.ts';
import { env } from '../../core/env.ts';
import { createConnection, ensureWorkspace } from '../../db/connections.ts';
import { principalSet } from '../../db/principals.ts';
import { getRun, type RunSummary } from '../../db/runs.ts';
import { generateDriveCompany } from '../../fixtures/drive/company.ts';
import { DriveEmulator } from '../../fixtures/drive/emulator.ts';
import { CUSTOMER_ID, email } from '../../fixtures/drive/ids.ts';
import { searchAuthorized } from '../../retrieval/search.ts';
import { LocalKeyFileProvider } from '../../vault/key-provider.ts';
import type { ActivityDeps } from '../../workflows/activities/index.ts';
import { SYNC_WORKFLOW_BY_SOURCE } from '../../workflows/constants.ts';
import type { SyncInput } from '../../workflows/types.ts';
import { createSyncWorker } from '../../workflows/worker.ts';
import { freshDatabase, type TestDatabase } from './database.ts';
import { loadModels } from './harness.ts';

/** Small back-off for tests (production: 8 attempts from 1 s). */
export const TEST_DRIVE_RETRY = { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 100 };

/** Real Postgres (fresh database), real Temporal (own task queue), the Drive emulator, the real model. */
export interface DriveHarness {
  db: TestDatabase;
  deps: ActivityDeps;
  emulator: DriveEmulator;
  client: Client;
  taskQueue: string;
  kekFile: string;
  workspaceId: string;
  connectionId: string;
  /** Runs one Drive sync workflow to completion and returns its run row. */
  sync(input?: Partial<SyncInput>): Promise<RunSummary>;
  /** Source ids a person (`alice`) or a principal key can retrieve through searchAuthorized with their principal set. */
  readable(who: string): Promise<Set<string>>;
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

export interface DriveHarnessOptions {
  fillerFiles?: number;
  worker?: boolean;
  /** Connection config on top of the emulator's rootUrl and the test back-off. */
  config?: Partial<DriveConfig>;
}

/** The principal key of a seeded person (`alice` -> `email:alice@ex.com`), or an external's. */
export function principalKeyOf(who: string): string {
  if (who.includes(':')) return who;
  return who.includes('@') ? `drive:${CUSTOMER_ID}:user:${who}` : `email:${email(who)}`;
}

export async function startDriveHarness(opts: DriveHarnessOptions = {}): Promise<DriveHarness> {
  const config = env();
  const db = await freshDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'astry-drive-test-'));
  const kekFile = join(dir, 'kek.key');
  const keys = await LocalKeyFileProvider.open(kekFile);
  const { embedder, chunker } = await loadModels();
  const emulator = await DriveEmulator.start(generateDriveCompany({ fillerFiles: opts.fillerFiles ?? 0 }));
  const deps: ActivityDeps = { pool: db.pool, keys, embedder, chunker, maxFileBytes: 5 * 1024 * 1024, extractTimeoutMs: 20_000, batchSize: 16 };
  const workspaceId = await ensureWorkspace(db.pool, 'test');
  const connection = await createConnection(db.pool, keys, {
    workspaceId, name: 'drive', source: 'drive', token: emulator.token,
    config: { rootUrl: emulator.rootUrl, retry: TEST_DRIVE_RETRY, ...opts.config },
  });
  const taskQueue = `astry-drive-test-${randomBytes(4).toString('hex')}`;
  const temporal = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection: temporal, namespace: config.TEMPORAL_NAMESPACE });
  const [queryVector] = await embedder.embed(['document notes codeword']);

  let running: { worker: Worker; connection: NativeConnection; done: Promise<void> } | undefined;
  const harness: DriveHarness = {
    db, deps, emulator, client, taskQueue, kekFile, workspaceId, connectionId: connection.id,
    async sync(input = {}) {
      const workflowId = `test-drive-sync-${randomBytes(6).toString('hex')}`;
      await client.workflow.execute(SYNC_WORKFLOW_BY_SOURCE.drive, {
        taskQueue, workflowId, args: [{ heartbeatTimeoutSeconds: 10, ...input, connectionId: connection.id }],
      });
      const run = await getRun(db.pool, workflowId);
      if (!run) throw new Error('no run row');
      return run;
    },
    async readable(who) {
      const { rows } = await db.pool.query<{ id: number }>(`SELECT id FROM principals WHERE workspace_id = $1 AND kind = 'user' AND key = $2`, [workspaceId, principalKeyOf(who)]);
      const principal = rows[0]?.id;
      if (principal === undefined) return new Set();
      const principalIds = await principalSet(db.pool, principal);
      const { hits } = await searchAuthorized(db.pool, { workspaceId, principalIds, embedding: queryVector ?? [] }, { k: 100_000 });
      const docs = await db.pool.query<{ source_id: string }>(`SELECT source_id FROM documents WHERE id = ANY($1::bigint[])`, [hits.map((h) => h.documentId)]);
      return new Set(docs.rows.map((r) => r.source_id));
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
