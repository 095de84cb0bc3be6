/**
 * What every sync harness shares: a fresh database, a key file, the real model, a connection to an
 * emulator, an own Temporal task queue with a sync worker, one-call sync runs, and "what can this
 * principal retrieve" answered through the query path (searchAuthorized).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { env } from '../../core/env.ts';
import { createConnection, ensureWorkspace, type SourceKind } from '../../db/connections.ts';
import { principalSet } from '../../db/principals.ts';
import { getRun, type RunSummary } from '../../db/runs.ts';
import { Chunker } from '../../pipeline/chunk.ts';
import { LocalEmbedder } from '../../pipeline/embed.ts';
import { searchAuthorized } from '../../retrieval/search.ts';
import { LocalKeyFileProvider } from '../../vault/key-provider.ts';
import type { ActivityDeps } from '../../workflows/activities/index.ts';
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

/** The harness parts every source shares. */
export interface SyncBase<D extends ActivityDeps> {
  db: TestDatabase;
  deps: D;
  client: Client;
  taskQueue: string;
  kekFile: string;
  workspaceId: string;
  connectionId: string;
  /** Runs one sync workflow to completion and returns its run row. */
  sync(input?: Partial<SyncInput>): Promise<RunSummary>;
  /** Source ids of the documents the principal (and its groups) retrieves for `embedding`, through searchAuthorized. */
  retrievableBy(principalId: number | undefined, embedding: readonly number[]): Promise<Set<string>>;
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

export interface SyncBaseOptions<D extends ActivityDeps> {
  /** Names the temporary directory, the task queue and workflow ids (`slack`, `graph`, `drive`). */
  name: string;
  source: SourceKind;
  /** The workflow a run starts. */
  workflow: string;
  /** Started by the caller (the connection's config needs its address); closed with the harness. */
  emulator: { close(): Promise<void> };
  connection: { name: string; config: Record<string, unknown>; token: string };
  /** Source-specific activity dependencies on top of the common ones. */
  deps?: Omit<D, keyof ActivityDeps> & Partial<ActivityDeps>;
  /** Start the sync worker now (default true). */
  worker?: boolean;
}

export async function startSyncBase<D extends ActivityDeps>(opts: SyncBaseOptions<D>): Promise<SyncBase<D>> {
  const config = env();
  const db = await freshDatabase();
  const dir = await mkdtemp(join(tmpdir(), `astry-${opts.name}-test-`));
  const kekFile = join(dir, 'kek.key');
  const keys = await LocalKeyFileProvider.open(kekFile);
  const { embedder, chunker } = await loadModels();
  const deps = { pool: db.pool, keys, embedder, chunker, maxFileBytes: 5 * 1024 * 1024, extractTimeoutMs: 20_000, batchSize: 16, ...opts.deps } as D;
  const workspaceId = await ensureWorkspace(db.pool, 'test');
  const connection = await createConnection(db.pool, keys, { workspaceId, source: opts.source, ...opts.connection });
  const taskQueue = `astry-${opts.name}-test-${randomBytes(4).toString('hex')}`;
  const temporal = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection: temporal, namespace: config.TEMPORAL_NAMESPACE });

  let running: { worker: Worker; connection: NativeConnection; done: Promise<void> } | undefined;
  const base: SyncBase<D> = {
    db, deps, client, taskQueue, kekFile, workspaceId, connectionId: connection.id,
    async sync(input = {}) {
      const workflowId = `test-${opts.name}-sync-${randomBytes(6).toString('hex')}`;
      await client.workflow.execute(opts.workflow, { taskQueue, workflowId, args: [{ heartbeatTimeoutSeconds: 10, ...input, connectionId: connection.id }] });
      const run = await getRun(db.pool, workflowId);
      if (!run) throw new Error('no run row');
      return run;
    },
    async retrievableBy(principalId, embedding) {
      if (principalId === undefined) return new Set();
      const principalIds = await principalSet(db.pool, principalId);
      const { hits } = await searchAuthorized(db.pool, { workspaceId, principalIds, embedding }, { k: 100_000 });
      const docs = await db.pool.query<{ source_id: string }>(`SELECT source_id FROM documents WHERE id = ANY($1::bigint[])`, [[...new Set(hits.map((h) => h.documentId))]]);
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
      await base.stopWorker();
      await temporal.close();
      await opts.emulator.close();
      await db.drop();
    },
  };
  if (opts.worker ?? true) await base.startWorker();
  return base;
}
