import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { importJWK, SignJWT } from 'jose';
import pg from 'pg';
import { registerAdminRoutes, type AdminRouteDeps } from '../api/admin/routes.ts';
import { ADMIN_ROLE, COMPLIANCE_ROLE } from '../api/admin/roles.ts';
import { buildApi } from '../api/server.ts';
import { AuditEntrySchema } from '../audit/entry.ts';
import { AuditLog } from '../audit/log.ts';
import { LocalEd25519Signer } from '../audit/signer.ts';
import { verifyAudit } from '../audit/verify.ts';
import { env } from '../core/env.ts';
import { createConnection } from '../db/connections.ts';
import { upsertDirectoryUsers } from '../db/directory.ts';
import { getRun } from '../db/runs.ts';
import { verifyAgainstChain, verifyBundle, verifySignedBundle, writeBundle } from '../erasure/bundle.ts';
import { openPersonal } from '../erasure/personal.ts';
import { bundleOf } from '../erasure/result.ts';
import { resolveSubject } from '../erasure/subject.ts';
import { DEFAULT_API_AUDIENCE, type IdpUser } from '../fixtures/idp/people.ts';
import { startIdp, type TestIdp } from '../fixtures/idp/server.ts';
import { FILE } from '../fixtures/slack/ids.ts';
import { TokenVerifier } from '../identity/verifier.ts';
import { AskQueue, redisConnection } from '../worker/queue.ts';
import { createErasureActivities } from '../workflows/erasure/activities.ts';
import { erasureWorkflowId, type ErasureResult } from '../workflows/erasure/types.ts';
import { deleteSchedule, ensureSchedule } from '../workflows/schedules.ts';
import { workflowBundle } from '../workflows/worker.ts';
import { assertNamesNoOne, auditEntries, openSealedRefusal } from './support/audit-privacy.ts';
import { startHarness, type SyncHarness } from './support/harness.ts';

/** The people of this test as the IdP knows them; their roles come from their profile, as Entra app roles or Okta groups would. */
const PEOPLE = {
  ada: { sub: 'idp-ada', email: 'ada@ex.com', name: 'Ada Lovelace', claims: { roles: [ADMIN_ROLE] } },
  cory: { sub: 'idp-cory', email: 'cory@ex.com', name: 'Cory Doctorow', claims: { roles: [COMPLIANCE_ROLE] } },
  nora: { sub: 'idp-nora', email: 'nora@ex.com', name: 'Nora Ephron' },
  // Deactivated in the directory while the IdP still signs her in, with the admin role.
  dana: { sub: 'idp-dana', email: 'dana@ex.com', name: 'Dana Scully', claims: { roles: [ADMIN_ROLE, COMPLIANCE_ROLE] } },
  // One role as a bare string (accepted), and two roles in one string (one unknown role: refused).
  sol: { sub: 'idp-sol', email: 'sol@ex.com', name: 'Sol LeWitt', claims: { roles: ADMIN_ROLE } },
  sue: { sub: 'idp-sue', email: 'sue@ex.com', name: 'Sue Bird', claims: { roles: `${ADMIN_ROLE} ${COMPLIANCE_ROLE}` } },
  // Okta style: the role is a group in the `groups` claim.
  gus: { sub: 'idp-gus', email: 'gus@ex.com', name: 'Gus Grissom', claims: { groups: [ADMIN_ROLE] } },
  // A list holding something else than strings is unreadable: no roles.
  odd: { sub: 'idp-odd', email: 'odd@ex.com', name: 'Odd Hassel', claims: { roles: [ADMIN_ROLE, 7] } },
} satisfies Record<string, IdpUser>;
type Person = keyof typeof PEOPLE;
const everyone = Object.keys(PEOPLE) as Person[];

const FORBIDDEN = { error: 'FORBIDDEN', message: 'access denied' };
const UNAUTHENTICATED = { error: 'UNAUTHENTICATED', message: 'authentication required' };

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

describe('the admin and compliance HTTP API (/v1/admin)', () => {
  let h: SyncHarness;
  let idp: TestIdp;
  let strangerIdp: TestIdp;
  let dir: string;
  let audit: AuditLog;
  let signer: LocalEd25519Signer;
  let queue: AskQueue;
  let native: NativeConnection;
  let erasureWorker: Worker;
  let erasureRunning: Promise<void>;
  let downConnection: Connection;
  const apps: FastifyInstance[] = [];
  const urls: Record<'main' | 'groups' | 'noTemporal' | 'temporalDown' | 'auditDown', string> = { main: '', groups: '', noTemporal: '', temporalDown: '', auditDown: '' };
  const tokens = {} as Record<Person, string>;
  const principalOf = {} as Record<Person, number>;
  let connectionId: string;
  let checkpointDir: string;
  /** Admin calls made, on any of the apps: each must have left one audit entry. */
  let adminCalls = 0;
  let erasure: { requestId: string } | undefined;
  const auditWarnings: string[] = [];

  async function call(method: 'GET' | 'POST', path: string, opts: { as?: Person; token?: string; body?: unknown; app?: keyof typeof urls } = {}): Promise<Answer> {
    const token = opts.token ?? (opts.as ? tokens[opts.as] : undefined);
    const response = await fetch(`${urls[opts.app ?? 'main']}/v1/admin${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
    });
    // A call to the app whose audit log is down cannot leave an entry.
    if (opts.app !== 'auditDown') adminCalls += 1;
    const body: unknown = await response.json();
    assert.ok(typeof body === 'object' && body !== null && !Array.isArray(body), `JSON object from ${method} ${path}`);
    return { status: response.status, body: Object.fromEntries(Object.entries(body)) };
  }

  async function connectionRow(id: string): Promise<Record<string, unknown>> {
    const { body } = await call('GET', '/connections', { as: 'ada' });
    assert.ok(Array.isArray(body.connections));
    const row: unknown = body.connections.find((c: { id?: unknown }) => c.id === id);
    assert.ok(typeof row === 'object' && row !== null, `connection ${id} is listed`);
    return Object.fromEntries(Object.entries(row));
  }

  async function statusOf(id: string): Promise<string> {
    const { rows } = await h.db.pool.query<{ status: string }>(`SELECT status FROM connections WHERE id = $1`, [id]);
    return rows[0]?.status ?? 'missing';
  }

  before(async () => {
    h = await startHarness();
    // Ids no other test's connection or person has: schedules are named after connection ids in the
    // shared Temporal, and a principal id must not look like the workspace id in the privacy check.
    const owner = new pg.Client({ connectionString: h.db.ownerUrl });
    await owner.connect();
    await owner.query(`ALTER TABLE connections ALTER COLUMN id RESTART WITH ${randomInt(1_000_000, 2_000_000_000)}`);
    await owner.query(`ALTER TABLE principals ALTER COLUMN id RESTART WITH 50000`);
    await owner.end();
    const connection = await createConnection(h.db.pool, h.deps.keys, {
      workspaceId: h.workspaceId, name: 'slack-admin', source: 'slack', config: { apiUrl: h.emulator.url }, token: h.emulator.token,
    });
    connectionId = connection.id;
    await ensureSchedule(h.client, {
      connectionId, taskQueue: h.taskQueue, intervalSeconds: 3600, source: 'slack', workflowInput: { heartbeatTimeoutSeconds: 10 },
    });
    // One bad item, so runs have an item error to report.
    h.emulator.faults.corruptFile(FILE.specPdf);

    await upsertDirectoryUsers(h.db.pool, h.workspaceId, everyone.map((p) => ({ email: PEOPLE[p].email, displayName: PEOPLE[p].name, active: p !== 'dana' })));
    const { rows } = await h.db.pool.query<{ id: number; key: string }>(`SELECT id, key FROM principals WHERE key = ANY($1)`, [everyone.map((p) => `email:${PEOPLE[p].email}`)]);
    for (const p of everyone) principalOf[p] = rows.find((r) => r.key === `email:${PEOPLE[p].email}`)?.id ?? 0;

    idp = await startIdp({ users: Object.values(PEOPLE), audience: DEFAULT_API_AUDIENCE, accessTokenTtlSeconds: 3600 });
    strangerIdp = await startIdp({ users: Object.values(PEOPLE), audience: DEFAULT_API_AUDIENCE });
    for (const p of everyone) tokens[p] = await idp.tokenFor(PEOPLE[p].email);

    dir = await mkdtemp(join(tmpdir(), 'astry-admin-'));
    signer = await LocalEd25519Signer.open(join(dir, 'audit.pem'));
    checkpointDir = join(dir, 'checkpoints');
    audit = new AuditLog({ pool: h.db.pool, spoolDir: join(dir, 'spool'), checkpointDir, signer, checkpointEvery: 5 });
    const config = env();
    const queueName = `astry-admin-test-${randomBytes(4).toString('hex')}`;
    queue = new AskQueue(redisConnection(config.REDIS_URL), queueName);

    const erasureQueue = `astry-admin-erasure-${randomBytes(4).toString('hex')}`;
    native = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
    erasureWorker = await Worker.create({
      connection: native, namespace: config.TEMPORAL_NAMESPACE, taskQueue: erasureQueue, workflowBundle: await workflowBundle(),
      activities: createErasureActivities({
        pool: h.db.pool, keys: h.deps.keys,
        erasure: { audit, signer, askQueues: { connection: redisConnection(config.REDIS_URL), names: [queueName] } },
      }),
    });
    erasureRunning = erasureWorker.run();

    const brokenAudit = new AuditLog({ pool: h.db.pool, spoolDir: join(dir, 'spool-broken'), checkpointDir, signer });
    await brokenAudit.close();
    const verifier = new TokenVerifier({ issuer: idp.issuer, audience: DEFAULT_API_AUDIENCE, jwksUrl: idp.jwksUrl });
    // Nothing listens on port 1: Temporal configured but down.
    downConnection = Connection.lazy({ address: '127.0.0.1:1' });
    const deps: AdminRouteDeps = {
      pool: h.db.pool, verifier, workspaceId: h.workspaceId, audit, keys: h.deps.keys,
      temporal: { client: h.client, taskQueue: erasureQueue }, auditVerify: { publicKey: signer.publicKey, checkpointDir },
    };
    const variants: Record<keyof typeof urls, AdminRouteDeps> = {
      main: deps,
      groups: { ...deps, rolesClaim: 'groups' },
      noTemporal: { ...deps, temporal: undefined },
      temporalDown: { ...deps, temporal: { client: new Client({ connection: downConnection }), taskQueue: erasureQueue }, temporalTimeoutMs: 1000 },
      // A log that takes nothing (neither Postgres nor its spool): append rejects.
      auditDown: { ...deps, audit: brokenAudit, onWarning: (message) => auditWarnings.push(message) },
    };
    for (const name of Object.keys(variants) as (keyof typeof urls)[]) {
      const adminDeps = variants[name];
      const app = await buildApi({
        pool: h.db.pool, verifier, queue, workspaceId: h.workspaceId, audit, keys: h.deps.keys,
        routes: [(a) => registerAdminRoutes(a, adminDeps)],
      });
      apps.push(app);
      urls[name] = await app.listen({ host: '127.0.0.1', port: 0 });
    }
  });

  after(async () => {
    await deleteSchedule(h.client, connectionId).catch(() => undefined);
    for (const app of apps) await app.close();
    erasureWorker?.shutdown();
    await erasureRunning;
    await native?.close();
    await downConnection?.close().catch(() => undefined);
    await queue?.close();
    await audit?.close();
    await idp?.stop();
    await strangerIdp?.stop();
    await h?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const unknownErasure = () => `erasure-${h.workspaceId}-${'0'.repeat(32)}`;
  const adminRoutes = (id: string): [method: 'GET' | 'POST', path: string][] => [
    ['GET', '/connections'],
    ['POST', `/connections/${id}/sync`],
    ['POST', `/connections/${id}/pause`],
    ['POST', `/connections/${id}/resume`],
    ['GET', `/connections/${id}/errors`],
  ];
  const complianceRoutes = (): [method: 'GET' | 'POST', path: string, body?: unknown][] => [
    ['POST', '/erasures', { subject: 'gina@ex.com' }],
    ['GET', `/erasures/${unknownErasure()}`],
    ['GET', '/audit/verify'],
  ];

  test('without a valid token every route is 401, for a real id as for an unknown one', async () => {
    const forged = await new SignJWT({ email: PEOPLE.ada.email, roles: [ADMIN_ROLE, COMPLIANCE_ROLE], iss: idp.issuer, aud: 'https://other.api.test', sub: PEOPLE.ada.sub })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: idp.signingKey().kid })
      .setIssuedAt().setExpirationTime('5m')
      .sign(await importJWK(idp.signingKey(), 'RS256'));
    const bad = {
      none: undefined,
      garbage: 'not.a.token',
      // Roles in a token of another issuer, and in one of our IdP's for another audience.
      otherIssuer: await strangerIdp.tokenFor(PEOPLE.ada.email),
      otherAudience: forged,
    };
    for (const [why, token] of Object.entries(bad)) {
      for (const [method, path, body] of [...adminRoutes(connectionId), ...adminRoutes('999999'), ...complianceRoutes()]) {
        const answer = await call(method, path, { ...(token === undefined ? {} : { token }), body });
        assert.equal(answer.status, 401, `${why}: ${method} ${path}`);
        assert.deepEqual(answer.body, UNAUTHENTICATED, `${why}: ${method} ${path}`);
      }
    }
  });

  test('an admin sees a connection\'s last run after a sync: status, times, counts, item errors, next run', async () => {
    const before = await connectionRow(connectionId);
    assert.equal(before.lastRun, null, 'never synced');
    assert.equal(before.paused, false);

    const started = await call('POST', `/connections/${connectionId}/sync`, { as: 'ada' });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const workflowId = String(started.body.workflowId);
    assert.equal(started.body.connectionId, connectionId);
    await h.client.workflow.getHandle(workflowId).result();
    const run = await getRun(h.db.pool, workflowId);
    assert.ok(run && run.indexed > 0 && run.errors === 1, JSON.stringify(run));

    const row = await connectionRow(connectionId);
    assert.equal(row.source, 'slack');
    assert.equal(row.name, 'slack-admin');
    assert.ok(typeof row.documents === 'number' && row.documents === run.indexed);
    const last = row.lastRun as Record<string, unknown>;
    assert.equal(last.workflowId, workflowId);
    assert.equal(last.status, 'succeeded');
    assert.deepEqual(last.counts, { indexed: run.indexed, unchanged: run.unchanged, aclUpdated: run.aclUpdated, deleted: run.deleted, chunks: run.chunks });
    assert.equal(last.errors, 1);
    assert.ok(Date.parse(String(last.startedAt)) <= Date.parse(String(last.finishedAt)));
    const schedule = row.schedule as Record<string, unknown>;
    assert.equal(schedule.state, 'active');
    const next = Date.parse(String(schedule.nextRunAt));
    assert.ok(next > Date.now() && next <= Date.now() + 3600_000, `next run within the interval: ${String(schedule.nextRunAt)}`);

    // The connection the harness made (never synced, no schedule) is listed too.
    const other = await connectionRow(h.connectionId);
    assert.equal(other.lastRun, null);
    assert.deepEqual(other.schedule, { state: 'missing', nextRunAt: null, runningWorkflowId: null });

    const errors = await call('GET', `/connections/${connectionId}/errors`, { as: 'ada' });
    assert.equal(errors.status, 200);
    assert.deepEqual(errors.body.runs, [{ workflowId, status: 'succeeded', startedAt: last.startedAt, finishedAt: last.finishedAt, errors: 1, failure: null }]);
    const [item, ...more] = errors.body.errors as Record<string, unknown>[];
    assert.equal(more.length, 0);
    assert.equal(item?.workflowId, workflowId);
    assert.equal(item?.itemId, `file:${FILE.specPdf}`);
    assert.equal(item?.code, 'EXTRACT_FAILED');
    assert.equal(errors.body.truncated, false);
    const limited = await call('GET', `/connections/${connectionId}/errors?runs=1&limit=0`, { as: 'ada' });
    assert.equal(limited.status, 400, 'limit must be at least 1');
  });

  test('a valid token without the route\'s role is 403 with one body, whatever the route, resource or reason', async () => {
    const runsBefore = (await h.db.pool.query(`SELECT 1 FROM sync_runs`)).rows.length;
    const refused: [Person, [method: 'GET' | 'POST', path: string, body?: unknown][]][] = [
      // No roles; a deactivated user holding both roles; two roles in one string; Okta's claim
      // while `roles` is configured; a malformed list.
      ...(['nora', 'dana', 'sue', 'gus', 'odd'] as const).map((p): [Person, [method: 'GET' | 'POST', path: string, body?: unknown][]] => [
        p, [...adminRoutes(connectionId), ...adminRoutes('999999'), ...complianceRoutes()],
      ]),
      // The admin role does not grant compliance, nor the reverse.
      ['ada', complianceRoutes()],
      ['sol', complianceRoutes()],
      ['cory', [...adminRoutes(connectionId), ...adminRoutes('999999')]],
    ];
    for (const [person, routes] of refused) {
      for (const [method, path, body] of routes) {
        const answer = await call(method, path, { as: person, body });
        assert.equal(answer.status, 403, `${person}: ${method} ${path}`);
        assert.deepEqual(answer.body, FORBIDDEN, `${person}: ${method} ${path}`);
      }
    }
    // Refused calls changed nothing: no pause, no run, no erasure (gina exists since the sync: an
    // erasure would have started).
    assert.equal(await statusOf(connectionId), 'active');
    assert.equal((await h.db.pool.query(`SELECT 1 FROM sync_runs`)).rows.length, runsBefore, 'no sync was started');
    const gina = await resolveSubject(h.db.pool, h.deps.keys, h.workspaceId, 'gina@ex.com');
    assert.ok(gina.principalId !== null);
    await assert.rejects(h.client.workflow.getHandle(erasureWorkflowId(h.workspaceId, gina.pseudonym)).describe(), WorkflowNotFoundError, 'no erasure was started');
  });

  test('pause, then a triggered sync does nothing, as with the CLI; resume restores the schedule', async () => {
    const documents = (await connectionRow(connectionId)).documents;
    const paused = await call('POST', `/connections/${connectionId}/pause`, { as: 'ada' });
    assert.equal(paused.status, 200);
    assert.deepEqual(paused.body, { connectionId, paused: true });
    assert.equal(await statusOf(connectionId), 'paused');
    const row = await connectionRow(connectionId);
    assert.equal(row.paused, true);
    assert.equal((row.schedule as Record<string, unknown>).state, 'paused');
    assert.equal((row.schedule as Record<string, unknown>).nextRunAt, null);

    h.emulator.reset();
    const started = await call('POST', `/connections/${connectionId}/sync`, { as: 'ada' });
    assert.equal(started.status, 202);
    await h.client.workflow.getHandle(String(started.body.workflowId)).result();
    const run = await getRun(h.db.pool, String(started.body.workflowId));
    assert.deepEqual(
      [run?.status, run?.indexed, run?.unchanged, run?.deleted, run?.errors],
      ['succeeded', 0, 0, 0, 0],
      'the run saw the paused connection and touched nothing',
    );
    assert.equal((await connectionRow(connectionId)).documents, documents);

    const resumed = await call('POST', `/connections/${connectionId}/resume`, { as: 'sol' });
    assert.equal(resumed.status, 200, 'a role given as one string is accepted');
    assert.deepEqual(resumed.body, { connectionId, paused: false });
    assert.equal(await statusOf(connectionId), 'active');
    const after = await connectionRow(connectionId);
    assert.equal(after.paused, false);
    assert.equal((after.schedule as Record<string, unknown>).state, 'active');
  });

  test('an unknown connection is 404 for an admin (and 403 for anyone else, as above)', async () => {
    for (const id of ['999999', 'slack-admin', '99999999999999999999', '1e3', 'gina@ex.com']) {
      for (const [method, path] of adminRoutes(encodeURIComponent(id)).slice(1)) {
        const answer = await call(method, path, { as: 'ada' });
        assert.equal(answer.status, 404, `${method} ${path}`);
        assert.equal(answer.body.error, 'NOT_FOUND');
      }
    }
    assert.equal((await call('POST', `/connections/999999/pause`, { as: 'cory' })).status, 403);
  });

  test('the roles claim is configurable: with `groups`, Okta-style groups grant the role and `roles` does not', async () => {
    assert.equal((await call('GET', '/connections', { as: 'gus', app: 'groups' })).status, 200);
    assert.equal((await call('GET', '/connections', { as: 'ada', app: 'groups' })).status, 403);
  });

  test('a call that cannot be audited is answered 500, never as if it had been', async () => {
    for (const [as, expected] of [['ada', 'allowed'], ['nora', 'refused']] as const) {
      const answer = await call('GET', '/connections', { as, app: 'auditDown' });
      assert.equal(answer.status, 500, expected);
      assert.deepEqual(answer.body, { error: 'AUDIT_UNAVAILABLE', message: 'the call could not be audited' });
    }
    assert.deepEqual(auditWarnings, ['admin API: connections.list could not be audited', 'admin API: connections.list could not be audited']);
  });

  test('the routes, their roles and bearer security are described in /openapi.json', async () => {
    const doc: unknown = await (await fetch(`${urls.main}/openapi.json`)).json();
    assert.ok(typeof doc === 'object' && doc !== null && 'paths' in doc && typeof doc.paths === 'object' && doc.paths !== null);
    const paths = Object.fromEntries(Object.entries(doc.paths));
    for (const path of ['/v1/admin/connections', '/v1/admin/connections/{id}/sync', '/v1/admin/connections/{id}/errors', '/v1/admin/erasures', '/v1/admin/erasures/{id}', '/v1/admin/audit/verify']) {
      assert.ok(path in paths, path);
      const operations = Object.values(paths[path] as Record<string, { security?: unknown; description?: string }>);
      assert.ok(operations.every((o) => JSON.stringify(o.security) === '[{"bearer":[]}]' && /Role astry\.(admin|compliance)/.test(o.description ?? '')), path);
    }
  });

  test('without Temporal, or with Temporal down, routes that need it answer 503; listing still works', async () => {
    for (const app of ['noTemporal', 'temporalDown'] as const) {
      for (const [method, path] of adminRoutes(connectionId).slice(1, 4)) {
        const answer = await call(method, path, { as: 'ada', app });
        assert.equal(answer.status, 503, `${app}: ${method} ${path}`);
        assert.equal(answer.body.error, 'UNAVAILABLE');
      }
      const erase = await call('POST', '/erasures', { as: 'cory', app, body: { subject: 'gina@ex.com' } });
      assert.equal(erase.status, 503);
      const list = await call('GET', '/connections', { as: 'ada', app });
      assert.equal(list.status, 200);
      const row = (list.body.connections as Record<string, unknown>[]).find((c) => c.id === connectionId);
      assert.equal((row?.schedule as Record<string, unknown>).state, 'unavailable');
      assert.ok(row?.lastRun, 'sync health comes from Postgres');
      // Unauthorized callers still learn nothing, Temporal or not.
      assert.equal((await call('POST', `/connections/${connectionId}/sync`, { as: 'nora', app })).status, 403);
    }
    assert.equal(await statusOf(connectionId), 'active');
  });

  test('a compliance officer erases a person; the bundle verifies; a second request returns the same one', async () => {
    const invalid = await call('POST', '/erasures', { as: 'cory', body: { subject: '' } });
    assert.equal(invalid.status, 400);
    const nobody = await call('POST', '/erasures', { as: 'cory', body: { subject: 'nobody-here@elsewhere.test' } });
    assert.equal(nobody.status, 404);

    const started = await call('POST', '/erasures', { as: 'cory', body: { subject: 'gina@ex.com', reason: 'DPO-2026-99', resync: false } });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const requestId = String(started.body.requestId);
    assert.match(requestId, new RegExp(`^erasure-${h.workspaceId}-[0-9a-f]{32}$`));
    assert.equal(started.body.joined, false);
    erasure = { requestId };

    const again = await call('POST', '/erasures', { as: 'cory', body: { subject: 'GINA@ex.com' } });
    assert.ok(again.status === 202 || again.status === 200);
    assert.equal(again.body.requestId, requestId, 'the same request');
    assert.equal(again.body.joined, true);

    let status: Answer;
    const deadline = Date.now() + 120_000;
    do {
      status = await call('GET', `/erasures/${requestId}`, { as: 'cory' });
      assert.equal(status.status, 200, JSON.stringify(status.body));
      if (status.body.status !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    } while (Date.now() < deadline);
    assert.equal(status.body.status, 'completed', JSON.stringify(status.body));
    assert.ok((status.body.erased as Record<string, number>).documents! > 0, 'gina\'s documents were erased');
    const { rows } = await h.db.pool.query(`SELECT 1 FROM principals p JOIN document_subjects s ON s.principal_id = p.id WHERE p.key = 'email:gina@ex.com'`);
    assert.equal(rows.length, 0, 'no document names her any more');

    // The bundle is the CLI's: written to a directory, it verifies like one, pinned to the audit key and against the chain.
    const result: ErasureResult = {
      requestId, pseudonym: '', completedAt: String(status.body.completedAt), erased: {}, destroyedKeyIds: [], rescanConnections: [],
      bundle: status.body.bundle as ErasureResult['bundle'],
    };
    const bundle = bundleOf(result);
    const verdict = verifySignedBundle(bundle, { publicKey: signer.publicKey });
    assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason);
    assert.equal(verdict.manifest.request.id, requestId);
    assert.equal(verdict.manifest.request.reason, 'DPO-2026-99');
    const out = join(dir, 'bundle');
    await writeBundle(out, bundle);
    const onDisk = await verifyBundle(out, { publicKey: signer.publicKey });
    assert.ok(onDisk.ok, onDisk.ok ? '' : onDisk.reason);
    assert.deepEqual(await verifyAgainstChain(h.db.pool, verdict.manifest, { publicKey: signer.publicKey, checkpointDir }), { ok: true });
    const tampered = { ...bundle, manifest: Buffer.from(bundle.manifest.toString('utf8').replace('DPO-2026-99', 'DPO-2026-98')) };
    assert.equal(verifySignedBundle(tampered, { publicKey: signer.publicKey }).ok, false);

    // The requester is on record only as a sealed actor: the officer's own subject key.
    const requestedBy = verdict.manifest.request.requestedBy;
    assert.match(requestedBy, /^api:subject-key:sk_/);
    for (const clear of [PEOPLE.cory.email, PEOPLE.cory.sub, PEOPLE.cory.name, `principal:${principalOf.cory}`]) assert.ok(!bundle.manifest.toString('utf8').includes(clear), clear);

    const repeat = await call('POST', '/erasures', { as: 'cory', body: { subject: 'gina@ex.com' } });
    assert.equal(repeat.status, 200, 'a completed erasure is returned, not repeated');
    assert.equal(repeat.body.requestId, requestId);
    assert.equal(repeat.body.status, 'completed');
    assert.deepEqual(repeat.body.bundle, status.body.bundle);

    // The second request asked for the rebuild of shared threads without her: this process triggers it.
    const completedAt = Date.parse(String(status.body.completedAt));
    let rebuilt = 0;
    for (let i = 0; i < 200 && rebuilt === 0; i++) {
      const { rows: runs } = await h.db.pool.query(`SELECT 1 FROM sync_runs WHERE connection_id = $1 AND started_at >= $2`, [connectionId, new Date(completedAt)]);
      rebuilt = runs.length;
      if (rebuilt === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(rebuilt, 1, 'the affected connection was synced again after the erasure');

    const unknown = await call('GET', `/erasures/${unknownErasure()}`, { as: 'cory' });
    assert.equal(unknown.status, 404);
    const otherWorkspace = await call('GET', `/erasures/${requestId.replace(`erasure-${h.workspaceId}-`, 'erasure-999-')}`, { as: 'cory' });
    assert.equal(otherWorkspace.status, 404);
  });

  test('the audit trail verifies through the API, as with the CLI', async () => {
    await audit.drain();
    const answer = await call('GET', '/audit/verify', { as: 'cory' });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.ok, true, JSON.stringify(answer.body));
    assert.ok(Number(answer.body.entries) > 0 && Number(answer.body.checkpoints) > 0);
  });

  test('every call left one audit entry naming no one in clear, and the chain verifies', async () => {
    await audit.drain();
    const entries = await auditEntries(h.db.pool, `entry->>'type' = 'admin'`);
    assert.equal(entries.length, adminCalls, 'one entry per admin call, refused ones included');
    const identifiers = everyone.flatMap((p) => [PEOPLE[p].email, PEOPLE[p].sub, PEOPLE[p].name]);
    const ids = everyone.map((p) => principalOf[p]);
    for (const entry of entries) assertNamesNoOne(entry, identifiers, ids);
    for (const entry of await auditEntries(h.db.pool, `entry->>'type' = 'erasure'`)) assertNamesNoOne(entry, identifiers, ids);

    const outcomes = new Set(entries.map((e) => e.outcome));
    for (const o of ['succeeded', 'refused_unauthenticated', 'refused_forbidden', 'not_found', 'invalid', 'unavailable']) assert.ok(outcomes.has(o), o);
    assert.ok(entries.filter((e) => e.outcome === 'refused_unauthenticated').every((e) => e.actor === 'unauthenticated'));

    // A refused caller's entry is sealed under their own key: what they tried, and why it was refused.
    const noras = entries.filter((e) => e.outcome === 'refused_forbidden' && e.details?.action === 'connection.pause' && e.details.target === connectionId);
    const sealed = await Promise.all(noras.map((e) => openPersonal(h.db.pool, h.deps.keys, h.workspaceId, e.personal!)));
    const nora = noras[sealed.findIndex((f) => f?.actor === `principal:${principalOf.nora}`)];
    assert.ok(nora, 'nora\'s refused pause is on record');
    const fields = await openSealedRefusal(h.db.pool, h.deps.keys, nora, principalOf.nora);
    assert.equal(fields.subject, PEOPLE.nora.sub);
    assert.match(String(fields.reason), /roles claim lacks astry\.admin/);
    // A deactivated user's refusals too, under her key (erasing her shreds them).
    const refusedFields = await Promise.all(entries.filter((e) => e.outcome === 'refused_forbidden').map(async (e) => ({ e, f: await openPersonal(h.db.pool, h.deps.keys, h.workspaceId, e.personal!) })));
    const danas = refusedFields.filter(({ f }) => f?.actor === `principal:${principalOf.dana}`);
    assert.equal(danas.length, 13, 'each of her 13 refused calls');
    assert.match(String(danas[0]?.f?.reason), /deactivated/);
    await openSealedRefusal(h.db.pool, h.deps.keys, danas[0]!.e, principalOf.dana);

    // An allowed call names its action, route and target; the erasure's names its request.
    const pause = entries.find((e) => e.outcome === 'succeeded' && e.details?.action === 'connection.pause');
    assert.deepEqual(
      { ...pause?.details },
      { via: 'api', action: 'connection.pause', method: 'POST', route: '/v1/admin/connections/:id/pause', status: 200, role: ADMIN_ROLE, target: connectionId },
    );
    assert.equal((await openSealedRefusal(h.db.pool, h.deps.keys, pause!, principalOf.ada)).actor, `principal:${principalOf.ada}`);
    assert.ok(entries.some((e) => e.details?.action === 'erasure.start' && e.details.target === erasure?.requestId && e.outcome === 'succeeded'));
    // An id-shaped target is recorded; anything else is not.
    assert.ok(entries.every((e) => e.details?.target === undefined || e.details.target === '(not an id)' || /^[A-Za-z0-9_.:-]+$/.test(String(e.details.target))));
    assert.ok(entries.some((e) => e.details?.target === '(not an id)'), 'an email in the URL is not recorded');

    const chain = await verifyAudit(h.db.pool, { publicKey: signer.publicKey, checkpointDir });
    assert.ok(chain.ok, JSON.stringify(chain));
    assert.ok(entries.every((e) => AuditEntrySchema.safeParse(e).success));
  });
});
