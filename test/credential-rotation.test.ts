import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { registerAdminRoutes } from '../api/admin/routes.ts';
import { ADMIN_ROLE } from '../api/admin/roles.ts';
import { buildApi } from '../api/server.ts';
import type { AuditLog } from '../audit/log.ts';
import { env } from '../core/env.ts';
import { isAstryError } from '../core/errors.ts';
import { connectionToken, createConnection, ensureWorkspace, rotateConnectionSecret } from '../db/connections.ts';
import { upsertDirectoryUsers } from '../db/directory.ts';
import { generateCompany } from '../fixtures/slack/company.ts';
import { SlackEmulator } from '../fixtures/slack/emulator.ts';
import { TEAM_ID } from '../fixtures/slack/ids.ts';
import { DEFAULT_API_AUDIENCE, type IdpUser } from '../fixtures/idp/people.ts';
import { startIdp, type TestIdp } from '../fixtures/idp/server.ts';
import { TokenVerifier } from '../identity/verifier.ts';
import { AskQueue, redisConnection } from '../worker/queue.ts';
import { deleteSchedule } from '../workflows/schedules.ts';
import { startHarness, type SyncHarness } from './support/harness.ts';
import { auditTrailIn } from './support/audit-trail.ts';
import { runAstry } from './support/spawn.ts';

const PEOPLE = {
  ada: { sub: 'idp-ada', email: 'ada@ex.com', name: 'Ada Lovelace', claims: { roles: [ADMIN_ROLE] } },
  nora: { sub: 'idp-nora', email: 'nora@ex.com', name: 'Nora Ephron' },
} satisfies Record<string, IdpUser>;
type Person = keyof typeof PEOPLE;


interface SecretRow {
  sealed_secret: Buffer;
  wrapped_dek: Buffer;
  kek_id: string;
  secret_rotated_at: Date | null;
}

/** Every message down an error's cause chain (a workflow failure wraps the activity's). */
function messages(err: unknown): string {
  const out: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) out.push(e.message);
  return out.join(' <- ');
}

describe('rotating a connection\'s source credential', () => {
  let h: SyncHarness;
  let idp: TestIdp;
  let dir: string;
  let audit: AuditLog;
  let queue: AskQueue;
  let app: FastifyInstance;
  let url: string;
  const tokens = {} as Record<Person, string>;
  /** Every secret this test handed to Astry: none may show up in audit entries or CLI output. */
  const secrets: string[] = [];
  const fresh = (label: string) => {
    const secret = `xoxb-${label}-${randomBytes(12).toString('hex')}`;
    secrets.push(secret);
    return secret;
  };

  async function put(id: string, body: unknown, as?: Person): Promise<{ status: number; body: Record<string, unknown> | null }> {
    const response = await fetch(`${url}/v1/admin/connections/${id}/credential`, {
      method: 'PUT',
      headers: { ...(as ? { authorization: `Bearer ${tokens[as]}` } : {}), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    for (const s of secrets) assert.ok(!text.includes(s), 'an answer never echoes a secret');
    return { status: response.status, body: text === '' ? null : (JSON.parse(text) as Record<string, unknown>) };
  }

  async function secretRow(id = h.connectionId): Promise<SecretRow> {
    const { rows } = await h.db.pool.query<SecretRow>(`SELECT sealed_secret, wrapped_dek, kek_id, secret_rotated_at FROM connections WHERE id = $1`, [id]);
    assert.ok(rows[0]);
    return rows[0];
  }

  async function latestRun(): Promise<{ status: string; failure: string | null }> {
    const { rows } = await h.db.pool.query<{ status: string; failure: string | null }>(
      `SELECT status, failure FROM sync_runs WHERE connection_id = $1 ORDER BY started_at DESC, id DESC LIMIT 1`, [h.connectionId],
    );
    assert.ok(rows[0]);
    return rows[0];
  }

  /** `astry …` in a child process on this test's database and key file; it must never print a secret. */
  async function astry(args: string[], stdin?: string): Promise<{ code: number | null; out: string }> {
    const result = await runAstry(h, dir, args, stdin);
    for (const s of secrets) assert.ok(!result.out.includes(s), `astry ${args.join(' ')} printed a secret: ${result.out}`);
    return result;
  }

  before(async () => {
    h = await startHarness();
    // A connection id no other test's has: nothing here is scheduled, but ids show up in audit entries.
    const owner = new pg.Client({ connectionString: h.db.ownerUrl });
    await owner.connect();
    await owner.query(`ALTER TABLE connections ALTER COLUMN id RESTART WITH ${randomInt(1_000_000, 2_000_000_000)}`);
    await owner.end();
    secrets.push(h.emulator.token);
    await upsertDirectoryUsers(h.db.pool, h.workspaceId, Object.values(PEOPLE).map((p) => ({ email: p.email, displayName: p.name, active: true })));
    idp = await startIdp({ users: Object.values(PEOPLE), audience: DEFAULT_API_AUDIENCE, accessTokenTtlSeconds: 3600 });
    for (const p of Object.keys(PEOPLE) as Person[]) tokens[p] = await idp.tokenFor(PEOPLE[p].email);
    dir = await mkdtemp(join(tmpdir(), 'astry-rotation-'));
    const trail = await auditTrailIn(h.db.pool, dir);
    audit = trail.audit;
    const signer = trail.signer;
    queue = new AskQueue(redisConnection(env().REDIS_URL), `astry-rotation-test-${randomBytes(4).toString('hex')}`);
    const verifier = new TokenVerifier({ issuer: idp.issuer, audience: DEFAULT_API_AUDIENCE, jwksUrl: idp.jwksUrl });
    app = await buildApi({
      pool: h.db.pool, verifier, queue, workspaceId: h.workspaceId, audit, keys: h.deps.keys,
      routes: [(a) => registerAdminRoutes(a, { pool: h.db.pool, verifier, workspaceId: h.workspaceId, audit, keys: h.deps.keys, auditVerify: { publicKey: signer.publicKey, checkpointDir: join(dir, 'checkpoints') } })],
    });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    await app?.close();
    await queue?.close();
    await audit?.close();
    await idp?.stop();
    await h?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a token revoked at Slack fails the sync with an auth error; rotated to the new one, the next sync succeeds', async () => {
    const old = await secretRow();
    assert.equal(old.secret_rotated_at, null, 'never rotated');
    const next = h.emulator.rotateToken(fresh('rotated'));

    const failed = await h.sync({ activityAttempts: 1 }).then(() => undefined, (err: unknown) => err);
    assert.ok(failed instanceof WorkflowFailedError, `the run failed: ${String(failed)}`);
    assert.match(messages(failed), /Slack auth\.test failed: token_revoked/);
    assert.equal((await latestRun()).status, 'failed');

    // Verified against Slack before it is stored: auth.test accepts the new token.
    const answer = await put(h.connectionId, { secret: next, verify: true }, 'ada');
    assert.equal(answer.status, 204, JSON.stringify(answer.body));
    assert.equal(answer.body, null);

    const rotated = await secretRow();
    assert.ok(rotated.secret_rotated_at instanceof Date, 'the rotation is recorded');
    assert.equal(await connectionToken(h.db.pool, h.deps.keys, h.connectionId), next);
    // A fresh data key and a fresh sealed value: neither old byte string survives anywhere in the row.
    const { rows } = await h.db.pool.query<{ row: string }>(`SELECT row_to_json(c)::text AS row FROM connections c WHERE id = $1`, [h.connectionId]);
    const rowText = rows[0]?.row ?? '';
    for (const [what, bytes] of [['sealed secret', old.sealed_secret], ['wrapped data key', old.wrapped_dek]] as const) {
      assert.ok(!rotated.sealed_secret.includes(bytes) && !rotated.wrapped_dek.includes(bytes), `old ${what} is gone`);
      assert.ok(!rowText.includes(bytes.toString('hex')), `old ${what} is nowhere in the row`);
    }
    assert.ok(!rowText.includes(next) && !rowText.includes(Buffer.from(next).toString('hex')), 'the new secret is stored sealed only');

    const run = await h.sync();
    assert.equal(run.status, 'succeeded', JSON.stringify(run));
    assert.ok(run.indexed > 0, 'the sync indexed documents with the rotated token');
  });

  test('with verify, a secret Slack refuses is not stored (422), nor one of another Slack workspace (409)', async () => {
    const before = await secretRow();
    const refused = await put(h.connectionId, { secret: fresh('wrong'), verify: true }, 'ada');
    assert.equal(refused.status, 422);
    assert.equal(refused.body?.error, 'SOURCE_AUTH_FAILED');
    assert.match(String(refused.body?.message), /invalid_auth/);
    assert.deepEqual(await secretRow(), before, 'nothing stored');

    // Another company's Slack accepts its own token, but this connection has synced team T0ASTRY's data.
    const company = generateCompany({ seed: 7 });
    const other = await SlackEmulator.start({ ...company, team: { ...company.team, id: 'T0OTHER', domain: 'other' } });
    const otherToken = other.rotateToken(fresh('other'));
    const { rows } = await h.db.pool.query<{ config: Record<string, unknown> }>(`SELECT config FROM connections WHERE id = $1`, [h.connectionId]);
    try {
      await h.db.pool.query(`UPDATE connections SET config = jsonb_set(config, '{apiUrl}', to_jsonb($2::text)) WHERE id = $1`, [h.connectionId, other.url]);
      const conflict = await put(h.connectionId, { secret: otherToken, verify: true }, 'ada');
      assert.equal(conflict.status, 409, JSON.stringify(conflict.body));
      assert.equal(conflict.body?.message, `the new credential is for slack account T0OTHER, but connection slack syncs ${TEAM_ID}`);
      assert.deepEqual(await secretRow(), before, 'nothing stored');
    } finally {
      await h.db.pool.query(`UPDATE connections SET config = $2 WHERE id = $1`, [h.connectionId, rows[0]?.config]);
      await other.close();
    }
  });

  test('the route is the admin\'s: 401 without a token, 403 without the role (even for an unknown id), 404 for an unknown id, 400 for an empty secret', async () => {
    const before = await secretRow();
    const attempt = fresh('attempt');
    assert.equal((await put(h.connectionId, { secret: attempt })).status, 401);
    const forbidden = await put(h.connectionId, { secret: attempt }, 'nora');
    assert.equal(forbidden.status, 403);
    assert.deepEqual(forbidden.body, { error: 'FORBIDDEN', message: 'access denied' });
    assert.equal((await put('999999999', { secret: attempt }, 'nora')).status, 403, 'nobody without the role learns which ids exist');
    assert.deepEqual(await secretRow(), before);

    for (const id of ['999999999', 'slack', '1'.repeat(25)]) {
      const unknown = await put(id, { secret: attempt }, 'ada');
      assert.equal(unknown.status, 404, id);
      assert.equal(unknown.body?.error, 'NOT_FOUND');
    }
    // Another workspace's connection is the same 404.
    const elsewhere = await createConnection(h.db.pool, h.deps.keys, {
      workspaceId: await ensureWorkspace(h.db.pool, 'other-workspace'), name: 'slack', source: 'slack', config: { apiUrl: h.emulator.url }, token: fresh('elsewhere'),
    });
    assert.equal((await put(elsewhere.id, { secret: attempt }, 'ada')).status, 404);

    for (const body of [{ secret: '' }, { secret: '   \n' }, {}, { secret: { value: attempt } }, { secret: 'x'.repeat(16385) }]) {
      assert.equal((await put(h.connectionId, body, 'ada')).status, 400, JSON.stringify(body).slice(0, 40));
    }
    assert.deepEqual(await secretRow(), before, 'no refused call changed the credential');
  });

  test('the route is described in /openapi.json with its role, bearer security and answers', async () => {
    const doc = (await (await fetch(`${url}/openapi.json`)).json()) as { paths: Record<string, Record<string, { security?: unknown; description?: string; responses?: Record<string, unknown> }>> };
    const put = doc.paths['/v1/admin/connections/{id}/credential']?.put;
    assert.ok(put, 'PUT /v1/admin/connections/{id}/credential is described');
    assert.deepEqual(put.security, [{ bearer: [] }]);
    assert.match(put.description ?? '', /Role astry\.admin/);
    assert.deepEqual(Object.keys(put.responses ?? {}).sort(), ['204', '400', '401', '403', '404', '409', '422', '502', '503']);
  });

  test('the library refuses an empty secret and an unknown or foreign connection with typed errors', async () => {
    const other = await ensureWorkspace(h.db.pool, 'other-workspace');
    const cases: [string, string, string, string][] = [
      ['empty', h.workspaceId, h.connectionId, ''],
      ['unknown id', h.workspaceId, '987654321', fresh('lib')],
      ['another workspace', other, h.connectionId, fresh('lib')],
    ];
    for (const [why, workspaceId, connectionId, secret] of cases) {
      await assert.rejects(
        rotateConnectionSecret(h.db.pool, h.deps.keys, workspaceId, connectionId, secret),
        (err) => isAstryError(err, why === 'empty' ? 'CONFIG_INVALID' : 'NOT_FOUND'),
        why,
      );
    }
  });

  test('astry connections rotate takes the secret from a file or stdin, never prints it, and with --verify stores only what Slack accepts', async () => {
    const listed = await astry(['connections']);
    assert.equal(listed.code, 0, listed.out);
    assert.match(listed.out, /slack/);

    // From a file: the next token the emulator will accept, written with a trailing newline as `echo` would.
    const next = h.emulator.rotateToken(fresh('cli-file'));
    const file = join(dir, 'token');
    await writeFile(file, `${next}\n`, { mode: 0o600 });
    const fromFile = await astry(['connections', 'rotate', 'slack', '--secret-file', file, '--verify']);
    assert.equal(fromFile.code, 0, fromFile.out);
    assert.match(fromFile.out, /slack: slack credential replaced at .*; Slack auth\.test accepted it \(account T0ASTRY\)/);
    assert.equal(await connectionToken(h.db.pool, h.deps.keys, h.connectionId), next, 'stored without the newline');

    // From stdin, by id.
    const piped = h.emulator.rotateToken(fresh('cli-stdin'));
    const fromStdin = await astry(['connections', 'rotate', h.connectionId, '--secret-stdin'], `${piped}\n`);
    assert.equal(fromStdin.code, 0, fromStdin.out);
    assert.equal(await connectionToken(h.db.pool, h.deps.keys, h.connectionId), piped);

    // Refused by Slack with --verify: exit 1, the credential unchanged.
    const before = await secretRow();
    await writeFile(file, fresh('cli-wrong'), { mode: 0o600 });
    const refused = await astry(['connections', 'rotate', 'slack', '--secret-file', file, '--verify']);
    assert.equal(refused.code, 1);
    assert.match(refused.out, /astry: Slack auth\.test failed: invalid_auth \(SOURCE_AUTH_FAILED\)/);
    assert.deepEqual(await secretRow(), before);

    // A secret as an argument is not an option; nor both sources, nor none; nor an empty file.
    const asArgument = fresh('cli-arg');
    const argued = await astry(['connections', 'rotate', 'slack', asArgument]);
    assert.equal(argued.code, 1);
    assert.match(argued.out, /takes no secret as an argument/);
    for (const args of [['--secret-file', file, '--secret-stdin'], []]) {
      const wrong = await astry(['connections', 'rotate', 'slack', ...args]);
      assert.equal(wrong.code, 1, wrong.out);
      assert.match(wrong.out, /exactly one of --secret-file <path> or --secret-stdin/);
    }
    await writeFile(file, '\n');
    assert.match((await astry(['connections', 'rotate', 'slack', '--secret-file', file])).out, /holds no secret/);
    await chmod(file, 0o644);
    await writeFile(file, fresh('cli-loose'));
    const loose = await astry(['connections', 'rotate', 'slack', '--secret-file', file, '--verify']);
    assert.match(loose.out, /readable by group or others/);
    assert.deepEqual(await secretRow(), before);

    const unknown = await astry(['connections', 'rotate', 'nope', '--secret-stdin'], fresh('cli-unknown'));
    assert.equal(unknown.code, 1);
    assert.match(unknown.out, /no connection "nope" \(NOT_FOUND\)/);

    // The sync works with what the CLI stored.
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
  });

  test('astry connect takes the secret from a file or stdin too, never as an argument, and never prints it', async () => {
    const file = join(dir, 'connect-token');
    await writeFile(file, `${h.emulator.token}\n`, { mode: 0o600 });
    const created: string[] = [];
    try {
      const fromFile = await astry(['connect', 'slack', '--name', 'from-file', '--api-url', h.emulator.url, '--secret-file', file]);
      assert.equal(fromFile.code, 0, fromFile.out);
      const fromStdin = await astry(['connect', 'slack', '--name', 'from-stdin', '--api-url', h.emulator.url, '--secret-stdin'], h.emulator.token);
      assert.equal(fromStdin.code, 0, fromStdin.out);
      for (const name of ['from-file', 'from-stdin']) {
        const { rows } = await h.db.pool.query<{ id: string }>(`SELECT id FROM connections WHERE name = $1`, [name]);
        const id = rows[0]?.id;
        assert.ok(id, `${name} stored`);
        created.push(id);
        assert.equal(await connectionToken(h.db.pool, h.deps.keys, id), h.emulator.token, 'stored without the newline');
      }
      const asArgument = fresh('connect-arg');
      const argued = await astry(['connect', 'slack', '--name', 'argued', asArgument]);
      assert.equal(argued.code, 1);
      assert.match(argued.out, /connect takes no secret as an argument/);
      const none = await astry(['connect', 'graph', '--tenant', 't', '--client-id', 'c']);
      assert.match(none.out, /exactly one of --secret-file <path> or --secret-stdin/);
      const { rows } = await h.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM connections WHERE name IN ('argued', 'graph')`);
      assert.equal(rows[0]?.n, 0, 'nothing stored for a refused command');
    } finally {
      for (const id of created) await deleteSchedule(h.client, id).catch(() => undefined);
    }
  });

  test('rotations leave audit entries, through the API and the CLI, and no entry holds a secret', async () => {
    const { rows } = await h.db.pool.query<{ entry: { type: string; outcome: string; details?: Record<string, unknown> } }>(`SELECT entry FROM audit_log ORDER BY seq`);
    const rotations = rows.map((r) => r.entry).filter((e) => e.details?.action === 'connection.credential.rotate');
    const outcomes = (via: string) => rotations.filter((e) => e.details?.via === via).map((e) => e.outcome);
    assert.deepEqual(
      new Set(outcomes('api')),
      new Set(['succeeded', 'rejected_by_source', 'conflict', 'refused_unauthenticated', 'refused_forbidden', 'not_found', 'invalid']),
    );
    assert.deepEqual(outcomes('cli'), ['succeeded', 'succeeded', 'rejected_by_source', 'rejected_by_source']);
    for (const e of rotations.filter((r) => r.details?.via === 'cli')) assert.equal(e.details?.target, h.connectionId);

    const everything = JSON.stringify(rows);
    for (const s of secrets) {
      assert.ok(!everything.includes(s), 'no secret in the audit log');
      assert.ok(!everything.includes(Buffer.from(s).toString('base64')), 'not even encoded');
    }
    // Nor in anything the audit wrote to disk (spool, checkpoints).
    for (const sub of ['spool', 'cli-spool', 'checkpoints']) {
      const files = await readdir(join(dir, sub), { recursive: true }).catch(() => []);
      for (const f of files) {
        const text = await readFile(join(dir, sub, f), 'utf8').catch(() => '');
        for (const s of secrets) assert.ok(!text.includes(s), `no secret in ${sub}/${f}`);
      }
    }
  });
});
