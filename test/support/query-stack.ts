import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../api/server.ts';
import { AuditLog } from '../../audit/log.ts';
import { LocalEd25519Signer } from '../../audit/signer.ts';
import { env } from '../../core/env.ts';
import { upsertDirectoryUsers } from '../../db/directory.ts';
import { SEEDED_IDP_USERS, DEFAULT_API_AUDIENCE } from '../../fixtures/idp/people.ts';
import { startIdp, type TestIdp } from '../../fixtures/idp/server.ts';
import { TokenVerifier } from '../../identity/verifier.ts';
import { ExtractiveProvider } from '../../models/extractive.ts';
import type { ModelProvider } from '../../models/types.ts';
import type { AskDeps } from '../../worker/ask.ts';
import type { ConfinementPreference } from '../../sandbox/selftest.ts';
import { startQueryWorker } from '../../worker/query-worker.ts';
import { AskQueue, redisConnection } from '../../worker/queue.ts';
import { claimSandboxRoot } from '../../worker/sandbox-root.ts';
import type { SyncHarness } from './harness.ts';

/** The query side on top of a synced harness: real IdP, API, BullMQ queue and worker, audit log. */
export interface QueryStack {
  idp: TestIdp;
  api: FastifyInstance;
  apiUrl: string;
  deps: AskDeps;
  signer: LocalEd25519Signer;
  checkpointDir: string;
  worker: Worker;
  queueName: string;
  ask(email: string, question: string): Promise<{ status: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

export async function startQueryStack(
  h: SyncHarness,
  opts: { provider?: ModelProvider; budget?: Partial<AskDeps['budget']>; confinement?: ConfinementPreference } = {},
): Promise<QueryStack> {
  const dir = await mkdtemp(join(tmpdir(), 'astry-query-'));
  // Canonical users come from the IdP directory (SCIM in a later issue): dave is deactivated there.
  await upsertDirectoryUsers(
    h.db.pool,
    h.workspaceId,
    SEEDED_IDP_USERS.map((u) => ({ email: u.email, displayName: u.name, active: !u.email.startsWith('dave@') })),
  );
  const idp = await startIdp({ users: [...SEEDED_IDP_USERS, { sub: 'idp-mallory', email: 'mallory@ex.com', name: 'Mallory' }], audience: DEFAULT_API_AUDIENCE });
  const signer = await LocalEd25519Signer.open(join(dir, 'audit.pem'));
  const checkpointDir = join(dir, 'checkpoints');
  const audit = new AuditLog({ pool: h.db.pool, spoolDir: join(dir, 'spool'), checkpointDir, signer, checkpointEvery: 5 });
  const deps: AskDeps = {
    pool: h.db.pool, keys: h.deps.keys, embedder: h.deps.embedder, audit,
    provider: opts.provider ?? new ExtractiveProvider(),
    sandboxRoot: (await claimSandboxRoot(join(dir, 'sandboxes'))).root,
    budget: { maxUsd: 0.05, maxTokens: 20_000, maxToolCalls: 12, maxWallMs: 30_000, ...opts.budget },
    maxUsdPerUserPerDay: 1,
  };
  const queueName = `astry-ask-test-${randomBytes(4).toString('hex')}`;
  const connection = redisConnection(env().REDIS_URL);
  const worker = await startQueryWorker(deps, { connection, queueName, concurrency: 2, ...(opts.confinement ? { confinement: opts.confinement } : {}) });
  const queue = new AskQueue(connection, queueName);
  const verifier = new TokenVerifier({ issuer: idp.issuer, audience: DEFAULT_API_AUDIENCE, jwksUrl: idp.jwksUrl });
  const api = await buildApi({ pool: h.db.pool, verifier, queue, workspaceId: h.workspaceId, askTimeoutMs: 60_000, audit, keys: h.deps.keys });
  const apiUrl = await api.listen({ host: '127.0.0.1', port: 0 });
  return {
    idp, api, apiUrl, deps, signer, checkpointDir, worker, queueName,
    async ask(email, question) {
      const token = await idp.tokenFor(email);
      const response = await fetch(`${apiUrl}/v1/ask`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ question }),
      });
      const body = (await response.json()) as Record<string, unknown>;
      return { status: response.status, body };
    },
    async close() {
      await api.close();
      await queue.close();
      await worker.close();
      await audit.close();
      await idp.stop();
    },
  };
}
