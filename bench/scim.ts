// SCIM benchmark: latency of the requests Okta and Entra send (create, filter-before-create, get,
// PATCH, pages of 100, group membership changes) through the real HTTP API on a fresh database,
// and deactivation-to-refusal: after the PATCH active:false is acknowledged, is the user's very
// next /v1/ask refused, and how long after the acknowledgement.
// Usage: node bench/scim.ts [--users 1000] [--samples 300] [--offboard 50]
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { buildApi } from '../api/server.ts';
import { registerScimRoutes } from '../api/scim/routes.ts';
import { createScimToken } from '../api/scim/tokens.ts';
import { env } from '../core/env.ts';
import { ensureWorkspace } from '../db/connections.ts';
import { DEFAULT_API_AUDIENCE } from '../fixtures/idp/people.ts';
import { startIdp } from '../fixtures/idp/server.ts';
import { TokenVerifier } from '../identity/verifier.ts';
import { AskQueue, redisConnection } from '../worker/queue.ts';
import { freshDatabase } from '../test/support/database.ts';

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '1000' },
    samples: { type: 'string', default: '300' },
    offboard: { type: 'string', default: '50' },
  },
});
function positive(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`--${name} must be a positive integer, got ${raw}`);
  return n;
}
const userCount = positive('users', values.users);
const samples = Math.min(positive('samples', values.samples), userCount);
const offboard = Math.min(positive('offboard', values.offboard), userCount);

const db = await freshDatabase();
const workspaceId = await ensureWorkspace(db.pool, 'bench');
const { token } = await createScimToken(db.pool, workspaceId, 'bench');
const email = (i: number) => `user${i}@bench.test`;
const idp = await startIdp({ users: Array.from({ length: offboard }, (_, i) => ({ sub: `idp-${i}`, email: email(i), name: `User ${i}` })), audience: DEFAULT_API_AUDIENCE });
// No query worker: refused requests never reach the queue, which is what is measured.
const queue = new AskQueue(redisConnection(env().REDIS_URL), `astry-ask-bench-${randomBytes(4).toString('hex')}`);
const api = await buildApi({
  pool: db.pool, workspaceId, queue, askTimeoutMs: 5_000,
  verifier: new TokenVerifier({ issuer: idp.issuer, audience: DEFAULT_API_AUDIENCE, jwksUrl: idp.jwksUrl }),
  routes: [(app) => registerScimRoutes(app, { pool: db.pool })],
});
const origin = await api.listen({ host: '127.0.0.1', port: 0 });

async function scim(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${origin}/scim/v2${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

const timings = new Map<string, number[]>();
async function timed<T>(name: string, work: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const out = await work();
  const list = timings.get(name) ?? [];
  list.push(performance.now() - start);
  timings.set(name, list);
  return out;
}
function expect(ok: boolean, what: string): void {
  if (!ok) throw new Error(`benchmark invariant failed: ${what}`);
}
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;

const ids: string[] = [];
for (let i = 0; i < userCount; i++) {
  const before = await timed('GET /Users?filter=userName eq (before create)', () => scim('GET', `/Users?filter=${encodeURIComponent(`userName eq "${email(i)}"`)}&startIndex=1&count=100`));
  expect(before.body.totalResults === 0, 'absent before create');
  const created = await timed('POST /Users', () => scim('POST', '/Users', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: email(i), name: { givenName: 'User', familyName: String(i) },
    emails: [{ primary: true, value: email(i), type: 'work' }], displayName: `User ${i}`, externalId: `ext-${i}`, active: true,
  }));
  expect(created.status === 201, `create ${i}: ${created.status}`);
  ids.push(String(created.body.id));
}
for (let i = 0; i < samples; i++) {
  const id = ids[(i * 7919) % ids.length] ?? '';
  expect((await timed('GET /Users/:id', () => scim('GET', `/Users/${id}`))).status === 200, 'get');
  const patch = { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'Replace', path: 'name.familyName', value: `F${i}` }, { op: 'Replace', path: 'emails[type eq "work"].value', value: email((i * 7919) % ids.length) }] };
  expect((await timed('PATCH /Users/:id (Entra replace, 2 ops)', () => scim('PATCH', `/Users/${id}`, patch))).status === 200, 'patch');
}
for (let start = 1; start <= userCount; start += 100) {
  const page = await timed('GET /Users?startIndex&count=100 (page)', () => scim('GET', `/Users?startIndex=${start}&count=100`));
  expect(page.body.totalResults === userCount, 'page total');
}
const group = await scim('POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Everyone', members: ids.map((value) => ({ value })) });
expect(group.status === 201, 'group');
const groupId = String(group.body.id);
for (let i = 0; i < samples; i++) {
  const member = ids[i] ?? '';
  const remove = { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'remove', path: `members[value eq "${member}"]` }] };
  expect((await timed(`PATCH /Groups/:id remove member (${userCount} members)`, () => scim('PATCH', `/Groups/${groupId}?excludedAttributes=members`, remove))).status === 200, 'remove');
  const add = { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'Add', path: 'members', value: [{ $ref: null, value: member }] }] };
  expect((await timed(`PATCH /Groups/:id add member (${userCount} members)`, () => scim('PATCH', `/Groups/${groupId}?excludedAttributes=members`, add))).status === 200, 'add');
}

// Deactivation to refusal: tokens are fetched first (the IdP keeps issuing them: it is not what is measured).
const bearer = await Promise.all(Array.from({ length: offboard }, (_, i) => idp.tokenFor(email(i))));
let refusedNext = 0;
const ackToRefusal: number[] = [];
for (let i = 0; i < offboard; i++) {
  const off = await timed('PATCH active:false (Okta)', () => scim('PATCH', `/Users/${ids[i] ?? ''}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', value: { active: false } }] }));
  expect(off.status === 200 && off.body.active === false, 'deactivated');
  const acked = performance.now();
  const res = await fetch(`${origin}/v1/ask`, { method: 'POST', headers: { authorization: `Bearer ${bearer[i] ?? ''}`, 'content-type': 'application/json' }, body: '{"question":"still here?"}' });
  await res.arrayBuffer();
  ackToRefusal.push(performance.now() - acked);
  if (res.status === 403) refusedNext++;
}

console.log(`SCIM benchmark: ${userCount} users, ${samples} samples per operation, ${offboard} offboardings`);
console.log(`host: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(['operation', 'n', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'].join(' | '));
const rows: [string, number[]][] = [...timings, ['ack of active:false -> next /v1/ask answered 403', ackToRefusal]];
for (const [name, list] of rows) {
  const sorted = [...list].sort((a, b) => a - b);
  console.log([name, sorted.length, ...[50, 95, 99, 100].map((p) => pct(sorted, p).toFixed(1))].join(' | '));
}
const all = [...timings.entries()].filter(([name]) => !name.startsWith('PATCH active')).flatMap(([, l]) => l).sort((a, b) => a - b);
console.log(`all SCIM requests: n=${all.length}, p50 ${pct(all, 50).toFixed(1)} ms, p95 ${pct(all, 95).toFixed(1)} ms`);
console.log(`deactivation: the first request after the acknowledgement was refused ${refusedNext}/${offboard} times`);

await api.close();
await queue.close();
await idp.stop();
await db.drop();
if (refusedNext !== offboard) process.exitCode = 1;
