import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { createConnection } from '../db/connections.ts';
import { inTransaction } from '../db/pool.ts';
import { setGroupClearance } from '../db/scim.ts';
import { resolveUser } from '../identity/users.ts';
import { storeDocument } from '../pipeline/store.ts';
import { startIdentityStack, type IdentityStack } from './fixtures-scim/identity-stack.ts';

const ALICE = 'alice@ex.com';
const ASTRY = 'urn:ietf:params:scim:schemas:extension:astry:2.0:User';
const CODEWORD = 'PAPAYA-LAUNCH-7';

/** Okta's create-user body for one of the IdP's people. */
function oktaUser(email: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName: email,
    name: { givenName: email.split('@')[0], familyName: 'Test' },
    emails: [{ primary: true, value: email, type: 'work' }],
    active: true,
    ...extra,
  };
}

const deactivate = { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', value: { active: false } }] };
const reactivate = { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', value: { active: true } }] };

function field(body: unknown, name: string): unknown {
  return typeof body === 'object' && body !== null ? Reflect.get(body, name) : undefined;
}

describe('identity lifecycle: SCIM provisioning decides who may ask, at once', () => {
  let s: IdentityStack;
  let aliceId = '';
  let refusedBody = '';
  before(async () => {
    s = await startIdentityStack();
  });
  after(async () => {
    await s?.close();
  });

  test('a person the IdP signs in but SCIM never provisioned is refused', async () => {
    const bob = await s.ask('bob@ex.com', 'anything?');
    assert.equal(bob.status, 403);
    refusedBody = JSON.stringify(bob.body);
  });

  test('provisioned through SCIM, the user may ask', async () => {
    const created = await s.scim('POST', '/Users', oktaUser(ALICE));
    assert.equal(created.status, 201, JSON.stringify(created.body));
    aliceId = String(field(created.body, 'id'));
    const answer = await s.ask(ALICE, 'what is new?');
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  });

  test('active:false refuses the very next request, exactly like an unknown user', async (t) => {
    const started = performance.now();
    const patched = await s.scim('PATCH', `/Users/${aliceId}`, deactivate);
    const patchedAt = performance.now();
    assert.equal(patched.status, 200);
    const refused = await s.ask(ALICE, 'what is new?');
    assert.equal(refused.status, 403, 'the next request is refused');
    assert.equal(JSON.stringify(refused.body), refusedBody, 'same answer as for someone never provisioned');
    t.diagnostic(`deactivation: PATCH answered in ${(patchedAt - started).toFixed(1)} ms; the next request was refused (${(performance.now() - patchedAt).toFixed(1)} ms incl. token)`);
  });

  test('reactivation restores access at once', async () => {
    assert.equal((await s.scim('PATCH', `/Users/${aliceId}`, reactivate)).status, 200);
    assert.equal((await s.ask(ALICE, 'what is new?')).status, 200);
  });

  test('a question already queued when the user is deactivated is refused when the worker picks it up', async () => {
    const token = await s.idp.tokenFor(ALICE);
    await s.holdQueue(true);
    let pending: Promise<{ status: number; body: unknown }> | undefined;
    try {
      pending = s.askWith(token, 'queued before the offboarding?');
      for (let i = 0; i < 1200 && (await s.waiting()) === 0; i++) await sleep(25);
      assert.equal(await s.waiting(), 1, 'the question is queued');
      assert.equal((await s.scim('PATCH', `/Users/${aliceId}`, deactivate)).status, 200);
    } finally {
      await s.holdQueue(false);
    }
    const answer = await pending;
    assert.equal(answer.status, 403, JSON.stringify(answer.body));
    assert.equal((await s.scim('PATCH', `/Users/${aliceId}`, reactivate)).status, 200);
  });

  test('SCIM group membership changes what the next query may read', async () => {
    const group = await s.scim('POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Launch team', members: [] });
    assert.equal(group.status, 201);
    const groupId = String(field(group.body, 'id'));
    const { rows } = await s.db.pool.query<{ principal_id: number }>(`SELECT principal_id FROM scim_resources WHERE id = $1`, [groupId]);
    const groupPrincipal = rows[0]?.principal_id;
    assert.ok(groupPrincipal);
    // A document the launch team (and only it) may read.
    const connection = await createConnection(s.db.pool, s.keys, { workspaceId: s.workspaceId, name: 'docs', source: 'slack', config: {}, token: 'x' });
    const text = `The launch codeword is ${CODEWORD} for the launch team.`;
    const [embedding] = await s.deps.embedder.embed([text]);
    await inTransaction(s.db.pool, (tx) =>
      storeDocument(tx, s.keys, { workspaceId: s.workspaceId, connectionId: connection.id }, {
        doc: { sourceId: 'launch', containerId: 'c', kind: 'slack_day', title: 'Launch', url: 'https://example.test/launch', contentVersion: '1', updatedAt: new Date(0), acl: [], content: { type: 'text', text } },
        title: 'Launch', text,
        chunks: [{ ordinal: 0, text, tokenCount: 20, embedding: embedding ?? [] }],
        grants: [{ principalId: groupPrincipal }], aclHash: 'launch',
      }),
    );
    const question = 'What is the launch codeword for the launch team?';
    const answerText = async () => String(field((await s.ask(ALICE, question)).body, 'answer'));

    assert.ok(!(await answerText()).includes(CODEWORD), 'not a member yet');
    const add = { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'Add', path: 'members', value: [{ $ref: null, value: aliceId }] }] };
    assert.equal((await s.scim('PATCH', `/Groups/${groupId}`, add)).status, 200);
    assert.ok((await answerText()).includes(CODEWORD), 'a member on the next query');
    const remove = { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'remove', path: `members[value eq "${aliceId}"]` }] };
    assert.equal((await s.scim('PATCH', `/Groups/${groupId}`, remove)).status, 200);
    assert.ok(!(await answerText()).includes(CODEWORD), 'removed on the next query');
  });

  test('clearance: the SCIM attribute, then the highest group clearance, is preferred to the token claim', async () => {
    const resolve = async () => (await resolveUser(s.db.pool, s.workspaceId, await s.verifier.verify(await s.idp.tokenFor(ALICE)))).clearance;
    assert.equal(await resolve(), 2, 'nothing stored: the token claim');
    const set = (value: unknown) => ({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', path: `${ASTRY}:clearance`, value }] });
    assert.equal((await s.scim('PATCH', `/Users/${aliceId}`, set('5'))).status, 200, 'a string integer, as an Entra custom attribute may be sent');
    assert.equal(await resolve(), 5);
    const group = await s.scim('POST', '/Groups', { displayName: 'Cleared', members: [{ value: aliceId }] });
    assert.equal(await setGroupClearance(s.db.pool, s.workspaceId, 'cleared', 7), 1);
    assert.equal(await resolve(), 7, 'the group grants more');
    assert.equal((await s.scim('DELETE', `/Groups/${String(field(group.body, 'id'))}`)).status, 204);
    assert.equal(await resolve(), 5, 'the group is gone');
    assert.equal((await s.scim('PATCH', `/Users/${aliceId}`, set(-1))).status, 400, 'out of range');
  });

  test('DELETE deprovisions at once; provisioning the person again adopts the same principal', async () => {
    const { rows: before } = await s.db.pool.query<{ id: number }>(`SELECT id FROM principals WHERE key = $1`, [`email:${ALICE}`]);
    assert.equal((await s.scim('DELETE', `/Users/${aliceId}`)).status, 204);
    assert.equal((await s.ask(ALICE, 'still there?')).status, 403);
    assert.equal((await s.scim('GET', `/Users/${aliceId}`)).status, 404);
    const again = await s.scim('POST', '/Users', oktaUser(ALICE));
    assert.equal(again.status, 201);
    const { rows: after } = await s.db.pool.query<{ id: number; active: boolean }>(`SELECT id, active FROM principals WHERE key = $1`, [`email:${ALICE}`]);
    assert.deepEqual(after, [{ id: before[0]?.id, active: true }]);
    assert.equal((await s.ask(ALICE, 'back?')).status, 200);
  });

  test('the SCIM routes are part of the API and its OpenAPI description', async () => {
    const spec = (await (await fetch(`${s.apiUrl}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    for (const path of ['/scim/v2/Users', '/scim/v2/Users/{id}', '/scim/v2/Groups/{id}', '/scim/v2/ServiceProviderConfig']) assert.ok(spec.paths[path], path);
    assert.ok(spec.paths['/v1/ask']);
  });
});
