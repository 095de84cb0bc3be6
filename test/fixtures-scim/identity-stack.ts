/**
 * The whole identity path on a fresh database: the real IdP (oidc-provider), the HTTP API from
 * buildApi with the SCIM routes registered through `routes`, the BullMQ query worker (hash
 * embedder, extractive answers, real sandbox and audit log), and a SCIM token for the workspace.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, type Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../api/server.ts';
import { registerScimRoutes } from '../../api/scim/routes.ts';
import { createScimToken } from '../../api/scim/tokens.ts';
import { AuditLog } from '../../audit/log.ts';
import { LocalEd25519Signer } from '../../audit/signer.ts';
import { env } from '../../core/env.ts';
import { ensureWorkspace } from '../../db/connections.ts';
import { DEFAULT_API_AUDIENCE, SEEDED_IDP_USERS } from '../../fixtures/idp/people.ts';
import { startIdp, type TestIdp } from '../../fixtures/idp/server.ts';
import { TokenVerifier } from '../../identity/verifier.ts';
import { ExtractiveProvider } from '../../models/extractive.ts';
import { LocalKeyFileProvider } from '../../vault/key-provider.ts';
import type { AskDeps } from '../../worker/ask.ts';
import { startQueryWorker } from '../../worker/query-worker.ts';
import { AskQueue, redisConnection } from '../../worker/queue.ts';
import { claimSandboxRoot } from '../../worker/sandbox-root.ts';
import { freshDatabase, type TestDatabase } from '../support/database.ts';
import { HashEmbedder } from '../support/hash-embedder.ts';

export interface IdentityStack {
  db: TestDatabase;
  workspaceId: string;
  idp: TestIdp;
  verifier: TokenVerifier;
  api: FastifyInstance;
  apiUrl: string;
  deps: AskDeps;
  keys: LocalKeyFileProvider;
  worker: Worker;
  /** Holds (true) or releases (false) the ask queue: questions are accepted but no worker takes them. */
  holdQueue(hold: boolean): Promise<void>;
  /** Questions waiting in this stack's ask queue (held or not). */
  waiting(): Promise<number>;
  scim(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  /** POST /v1/ask with a fresh IdP token for `email`. */
  ask(email: string, question: string): Promise<{ status: number; body: unknown }>;
  /** POST /v1/ask with a given bearer token. */
  askWith(token: string, question: string): Promise<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

export async function startIdentityStack(): Promise<IdentityStack> {
  const db = await freshDatabase();
  const workspaceId = await ensureWorkspace(db.pool, 'acme');
  const { token } = await createScimToken(db.pool, workspaceId, 'okta');
  const dir = await mkdtemp(join(tmpdir(), 'astry-identity-'));
  const keys = await LocalKeyFileProvider.open(join(dir, 'kek'));
  const signer = await LocalEd25519Signer.open(join(dir, 'audit.pem'));
  const audit = new AuditLog({ pool: db.pool, spoolDir: join(dir, 'spool'), checkpointDir: join(dir, 'checkpoints'), signer });
  const deps: AskDeps = {
    pool: db.pool, keys, embedder: new HashEmbedder(), provider: new ExtractiveProvider(), audit,
    sandboxRoot: (await claimSandboxRoot(join(dir, 'sandboxes'))).root,
    budget: { maxUsd: 0, maxTokens: 10_000, maxToolCalls: 12, maxWallMs: 20_000 },
    maxUsdPerUserPerDay: 1,
  };
  const queueName = `astry-ask-scim-${randomBytes(4).toString('hex')}`;
  const connection = redisConnection(env().REDIS_URL);
  const worker = await startQueryWorker(deps, { connection, queueName, concurrency: 1 });
  const queue = new AskQueue(connection, queueName);
  const inspect = new Queue(queueName, { connection });
  const idp = await startIdp({ users: SEEDED_IDP_USERS, audience: DEFAULT_API_AUDIENCE });
  const verifier = new TokenVerifier({ issuer: idp.issuer, audience: DEFAULT_API_AUDIENCE, jwksUrl: idp.jwksUrl });
  const api = await buildApi({
    pool: db.pool, verifier, queue, workspaceId, askTimeoutMs: 60_000, audit, keys,
    routes: [(app) => registerScimRoutes(app, { pool: db.pool })],
  });
  const apiUrl = await api.listen({ host: '127.0.0.1', port: 0 });
  const json = async (response: Response) => ({ status: response.status, body: response.status === 204 ? undefined : ((await response.json()) as unknown) });
  const askWith = async (bearer: string, question: string) =>
    json(await fetch(`${apiUrl}/v1/ask`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ question }),
    }));
  return {
    db, workspaceId, idp, verifier, api, apiUrl, deps, keys, worker,
    holdQueue: (hold) => (hold ? inspect.pause() : inspect.resume()),
    waiting: () => inspect.getWaitingCount(),
    async scim(method, path, body) {
      return json(await fetch(`${apiUrl}/scim/v2${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }));
    },
    askWith,
    async ask(email, question) {
      return askWith(await idp.tokenFor(email), question);
    },
    async close() {
      await api.close();
      await queue.close();
      await inspect.close();
      await worker.close();
      await audit.close();
      await idp.stop();
      await db.drop();
    },
  };
}
