import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { verifyAudit } from '../audit/verify.ts';
import { CHANNEL, CODEWORD, FILE_CODEWORD } from '../fixtures/slack/ids.ts';
import { readableSourceIds } from './support/access.ts';
import { assertNamesNoOne, auditEntries, openSealedRefusal, pseudonymActorOf } from './support/audit-privacy.ts';
import { startHarness, type SyncHarness } from './support/harness.ts';
import { startQueryStack, type QueryStack } from './support/query-stack.ts';

interface Cited {
  documentId: string;
  title: string;
  url: string;
}

async function sourceIdsOf(h: SyncHarness, documentIds: string[]): Promise<string[]> {
  const { rows } = await h.db.pool.query<{ source_id: string }>(`SELECT source_id FROM documents WHERE id = ANY($1::bigint[])`, [documentIds]);
  return rows.map((r) => r.source_id);
}

describe('asking a question end to end (IdP token -> API -> queue -> sandbox -> extractive model -> audit)', () => {
  let h: SyncHarness;
  let q: QueryStack;
  before(async () => {
    h = await startHarness();
    await h.sync();
    q = await startQueryStack(h);
  });
  after(async () => {
    await q?.close();
    await h?.close();
  });

  test('alice gets an extractive answer with citations from the private channel she is in', async () => {
    const { status, body } = await q.ask('alice@ex.com', `What is the plan mentioned with ${CODEWORD.privatePlans}?`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.mode, 'extractive');
    assert.match(String(body.answer), /Extractive answer/);
    const citations = body.citations as Cited[];
    assert.ok(citations.length > 0, 'cites its sources');
    assert.ok(String(body.answer).includes(CODEWORD.privatePlans));
    const readable = await readableSourceIds(h.db.pool, h.connectionId, 'U0ALICE');
    for (const id of await sourceIdsOf(h, citations.map((c) => c.documentId))) assert.ok(readable.has(id), `${id} is alice's to read`);
  });

  test('the same question from bob (not a member) cites nothing from #private-plans', async () => {
    const { status, body } = await q.ask('bob@ex.com', `What is the plan mentioned with ${CODEWORD.privatePlans}?`);
    assert.equal(status, 200);
    assert.ok(!String(body.answer).includes(CODEWORD.privatePlans), 'no private content in the answer');
    const cited = await sourceIdsOf(h, (body.citations as Cited[]).map((c) => c.documentId));
    assert.ok(cited.every((id) => !id.includes(CHANNEL.privatePlans)));
  });

  test('a single-channel guest only ever gets #engineering', async () => {
    const { body } = await q.ask('sam@ex.com', `Tell me about ${CODEWORD.general} and ${CODEWORD.engineering}`);
    const cited = await sourceIdsOf(h, (body.citations as Cited[]).map((c) => c.documentId));
    const readable = await readableSourceIds(h.db.pool, h.connectionId, 'U0SAM');
    for (const id of cited) assert.ok(readable.has(id));
    assert.ok(!String(body.answer).includes(CODEWORD.general));
  });

  test('file content is answerable by someone who can read the file', async () => {
    const { body } = await q.ask('alice@ex.com', `What does the spec say about ${FILE_CODEWORD.specPdf}?`);
    assert.ok(String(body.answer).includes(FILE_CODEWORD.specPdf), String(body.answer));
  });

  test('a deactivated user, an unknown user and a bad token are refused the same way as nonexistent', async () => {
    assert.equal((await q.ask('dave@ex.com', 'anything')).status, 403);
    const unknown = await q.ask('mallory@ex.com', 'anything');
    assert.equal(unknown.status, 403);
    assert.deepEqual(unknown.body, (await q.ask('dave@ex.com', 'anything')).body, 'same answer: existence is not leaked');
    const bad = await fetch(`${q.apiUrl}/v1/ask`, { method: 'POST', headers: { authorization: 'Bearer not.a.token', 'content-type': 'application/json' }, body: '{"question":"x"}' });
    assert.equal(bad.status, 401);
    const none = await fetch(`${q.apiUrl}/v1/ask`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"question":"x"}' });
    assert.equal(none.status, 401);
  });

  test('refusals are audited naming no one in clear: a deactivated user sealed under their key, an unknown subject by pseudonym', async () => {
    const { rows } = await h.db.pool.query<{ id: number }>(`SELECT id FROM principals WHERE key = 'email:dave@ex.com'`);
    const dave = rows[0]?.id;
    assert.ok(dave !== undefined);
    await q.deps.audit.drain();
    const { rows: [marker] } = await h.db.pool.query<{ seq: string | null }>(`SELECT max(seq)::text AS seq FROM audit_log`);
    assert.equal((await q.ask('dave@ex.com', 'anything')).status, 403);
    assert.equal((await q.ask('mallory@ex.com', 'anything')).status, 403);
    await q.deps.audit.drain();
    const refused = await auditEntries(h.db.pool, `seq > $1 AND entry->>'outcome' = 'refused_forbidden'`, [marker?.seq ?? '0']);
    assert.equal(refused.length, 2, JSON.stringify(refused));
    const [daves, mallorys] = refused;
    assert.ok(daves && mallorys);

    assertNamesNoOne(daves, ['idp-dave', 'dave@ex.com', 'Dave'], [dave]);
    const sealed = await openSealedRefusal(h.db.pool, q.deps.keys, daves, dave);
    assert.equal(sealed.subject, 'idp-dave');
    assert.equal(sealed.actor, `principal:${dave}`);
    assert.match(String(sealed.reason), /dave@ex\.com.*deactivated/);

    assertNamesNoOne(mallorys, ['idp-mallory', 'mallory@ex.com', 'Mallory']);
    assert.equal(mallorys.personal, undefined, 'no key to seal under: nothing personal is kept');
    assert.equal(mallorys.actor, await pseudonymActorOf(h.db.pool, q.deps.keys, h.workspaceId, 'oidc:idp-mallory'), 'an admin can recompute it from the subject');
    assert.notEqual(mallorys.actor, await pseudonymActorOf(h.db.pool, q.deps.keys, h.workspaceId, 'oidc:idp-dave'));

    const none = await auditEntries(h.db.pool, `entry->>'outcome' = 'refused_unauthenticated'`);
    assert.ok(none.length > 0 && none.every((e) => e.actor === 'unauthenticated' && e.personal === undefined));
  });

  test('every query is in the audit trail with the materialized document ids, and the chain verifies', async () => {
    await q.deps.audit.drain();
    const { rows } = await h.db.pool.query<{ entry: { type: string; documentIds?: string[]; outcome: string } }>(`SELECT entry FROM audit_log ORDER BY seq`);
    const queries = rows.filter((r) => r.entry.type === 'query');
    assert.ok(queries.length >= 4, `${queries.length} query entries`);
    assert.ok(queries.some((r) => (r.entry.documentIds ?? []).length > 0));
    assert.ok(queries.some((r) => r.entry.outcome === 'refused_forbidden'), 'refusals are audited too');
    assert.ok(queries.some((r) => r.entry.outcome === 'refused_unauthenticated'));
    const result = await verifyAudit(h.db.pool, { publicKey: q.signer.publicKey, checkpointDir: q.checkpointDir });
    assert.equal(result.ok, true, JSON.stringify(result));
  });

  test('no sandbox is left behind after the queries', async () => {
    assert.deepEqual(await readdir(q.deps.sandboxRoot), []);
  });

  test('the API is described by OpenAPI', async () => {
    const spec = (await (await fetch(`${q.apiUrl}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    assert.ok(spec.paths['/v1/ask']);
  });
});

describe('a query worker configured for Landlock (ASTRY_CONFINEMENT=landlock)', () => {
  let h: SyncHarness;
  let q: QueryStack;
  before(async () => {
    h = await startHarness();
    await h.sync();
    q = await startQueryStack(h, { confinement: 'landlock' });
  });
  after(async () => {
    await q?.close();
    await h?.close();
  });

  test('answers through Landlock-confined tools, the same authorized answer, and the audit entry says which confinement', async () => {
    const { status, body } = await q.ask('alice@ex.com', `What is the plan mentioned with ${CODEWORD.privatePlans}?`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.ok(String(body.answer).includes(CODEWORD.privatePlans));
    const bob = await q.ask('bob@ex.com', `What is the plan mentioned with ${CODEWORD.privatePlans}?`);
    assert.ok(!String(bob.body.answer).includes(CODEWORD.privatePlans), 'no private content for a non-member');
    await q.deps.audit.drain();
    const { rows } = await h.db.pool.query<{ entry: { type: string; details?: { confinement?: string } } }>(`SELECT entry FROM audit_log ORDER BY seq`);
    const queries = rows.filter((r) => r.entry.type === 'query');
    assert.equal(queries.length, 2);
    assert.deepEqual(queries.map((r) => r.entry.details?.confinement), ['landlock', 'landlock']);
    assert.deepEqual(await readdir(q.deps.sandboxRoot), []);
  });
});
