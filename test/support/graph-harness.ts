/**
 * Real Postgres (fresh database), real Temporal (own task queue), the Graph emulator over HTTPS,
 * the real model; and "what can this person retrieve", answered through searchAuthorized.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { env } from '../../core/env.ts';
import { createConnection, ensureWorkspace } from '../../db/connections.ts';
import { principalSet } from '../../db/principals.ts';
import { getRun, type RunSummary } from '../../db/runs.ts';
import { GraphEmulator } from '../../fixtures/graph/emulator.ts';
import { FILES, PEOPLE, USER, type FileKey, type Person } from '../../fixtures/graph/ids.ts';
import { generateTenant, type TenantOptions } from '../../fixtures/graph/tenant.ts';
import { searchAuthorized } from '../../retrieval/search.ts';
import { LocalKeyFileProvider } from '../../vault/key-provider.ts';
import type { GraphActivityDeps } from '../../workflows/graph/activities.ts';
import type { SyncInput } from '../../workflows/types.ts';
import { createSyncWorker } from '../../workflows/worker.ts';
import { freshDatabase, type TestDatabase } from './database.ts';
import { loadModels } from './harness.ts';

/** Graph retry budget for tests: Retry-After is honoured, 3 retries per call, then the activity retries. */
export const TEST_GRAPH_RETRY = { maxRetries: 3, delaySeconds: 0 };

export interface GraphHarness {
  db: TestDatabase;
  deps: GraphActivityDeps;
  emulator: GraphEmulator;
  client: Client;
  taskQueue: string;
  kekFile: string;
  workspaceId: string;
  connectionId: string;
  /** Runs one syncGraphWorkflow to completion and returns its run row. */
  sync(input?: Partial<SyncInput>): Promise<RunSummary>;
  /** Source ids (`item:<drive>:<item>`) of the documents `person` can retrieve through the query path. */
  retrievable(person: Person | string): Promise<Set<string>>;
  /** The source id of a named file. */
  sourceId(file: FileKey): string;
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

/** Who should read a named file: its readers with 'internal' expanded to every enabled member. */
export function expectedReaders(emulator: GraphEmulator, file: FileKey): Set<string> {
  const internal = emulator.state.tenant.users.filter((u) => u.userType === 'Member' && u.accountEnabled).map((u) => u.id);
  return new Set(FILES[file].readers.flatMap((r) => (r === 'internal' ? internal : [USER[r]])));
}

/** The seeded people's Entra ids, plus two filler members. */
export function everyone(emulator: GraphEmulator): { name: string; id: string }[] {
  const fillers = emulator.state.tenant.users.filter((u) => !Object.values(USER).includes(u.id)).slice(0, 2);
  return [...PEOPLE.map((p) => ({ name: p, id: USER[p] })), ...fillers.map((u) => ({ name: u.displayName, id: u.id }))];
}

export async function startGraphHarness(opts: { tenant?: TenantOptions; worker?: boolean; notificationBaseUrl?: string } = {}): Promise<GraphHarness> {
  const config = env();
  const db = await freshDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'astry-graph-test-'));
  const kekFile = join(dir, 'kek.key');
  const keys = await LocalKeyFileProvider.open(kekFile);
  const { embedder, chunker } = await loadModels();
  const emulator = await GraphEmulator.start(generateTenant(opts.tenant ?? {}));
  const deps: GraphActivityDeps = {
    pool: db.pool, keys, embedder, chunker, maxFileBytes: 5 * 1024 * 1024, extractTimeoutMs: 20_000, batchSize: 16, graphRetry: TEST_GRAPH_RETRY,
  };
  const workspaceId = await ensureWorkspace(db.pool, 'test');
  const tenant = emulator.state.tenant;
  const connection = await createConnection(db.pool, keys, {
    workspaceId, name: 'm365', source: 'graph', token: tenant.clientSecret,
    config: {
      graphUrl: emulator.graphUrl, authorityUrl: emulator.authorityUrl, tenantId: tenant.tenantId, clientId: tenant.clientId, caPem: emulator.caPem,
      ...(opts.notificationBaseUrl ? { notificationBaseUrl: opts.notificationBaseUrl } : {}),
    },
  });
  const taskQueue = `astry-graph-test-${randomBytes(4).toString('hex')}`;
  const temporal = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection: temporal, namespace: config.TEMPORAL_NAMESPACE });
  const [probe] = await embedder.embed(['what do the documents say']);

  let running: { worker: Worker; connection: NativeConnection; done: Promise<void> } | undefined;
  const harness: GraphHarness = {
    db, deps, emulator, client, taskQueue, kekFile, workspaceId, connectionId: connection.id,
    async sync(input = {}) {
      const workflowId = `test-graph-${randomBytes(6).toString('hex')}`;
      await client.workflow.execute('syncGraphWorkflow', { taskQueue, workflowId, args: [{ heartbeatTimeoutSeconds: 10, ...input, connectionId: connection.id }] });
      const run = await getRun(db.pool, workflowId);
      if (!run) throw new Error('no run row');
      return run;
    },
    async retrievable(person) {
      const entraId = person in USER ? USER[person as Person] : person;
      const { rows } = await db.pool.query<{ principal_id: number }>(
        `SELECT principal_id FROM source_identities WHERE connection_id = $1 AND source_user_id = $2`, [connection.id, entraId],
      );
      const principal = rows[0]?.principal_id;
      if (principal === undefined) return new Set();
      const principalIds = await principalSet(db.pool, principal);
      const { hits } = await searchAuthorized(db.pool, { workspaceId, principalIds, embedding: probe ?? [] }, { k: 100_000 });
      const docIds = [...new Set(hits.map((h) => h.documentId))];
      const docs = await db.pool.query<{ source_id: string }>(`SELECT source_id FROM documents WHERE id = ANY($1::bigint[])`, [docIds]);
      return new Set(docs.rows.map((r) => r.source_id));
    },
    sourceId(file) {
      const spec = FILES[file];
      const site = emulator.state.site(spec.site);
      if (!site) throw new Error(`no site ${spec.site}`);
      return `item:${site.driveId}:${emulator.state.itemByPath(site.driveId, spec.path).id}`;
    },
    async startWorker() {
      const { worker, connection: native } = await createSyncWorker(
        { TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE: config.TEMPORAL_NAMESPACE, ASTRY_TASK_QUEUE: taskQueue }, deps,
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
