import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createScimToken, listScimTokens, revokeScimToken } from '../api/scim/tokens.ts';
import { ensureWorkspace } from '../db/connections.ts';
import { startScimStack, type ScimStack } from './fixtures-scim/stack.ts';

const USER = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  userName: 'carol@acme.test',
  emails: [{ value: 'carol@acme.test', type: 'work', primary: true }],
  active: true,
};

describe('SCIM credentials: every refusal looks the same, whether or not the user exists', () => {
  let stack: ScimStack;
  let carolId: string;
  let otherToken: string;
  let revokedToken: string;
  before(async () => {
    stack = await startScimStack();
    const created = await stack.request('POST', '/Users', USER);
    assert.equal(created.status, 201);
    carolId = String((created.body as { id: string }).id);
    otherToken = (await createScimToken(stack.db.pool, await ensureWorkspace(stack.db.pool, 'other-tenant'), 'okta')).token;
    const revoked = await createScimToken(stack.db.pool, stack.workspaceId, 'old');
    assert.ok(await revokeScimToken(stack.db.pool, stack.workspaceId, revoked.id));
    revokedToken = revoked.token;
  });
  after(async () => {
    await stack?.close();
  });

  test('missing, malformed, unknown and revoked tokens get one identical 401 on existing, absent and unknown paths', async () => {
    const credentials: (string | null)[] = [null, 'garbage', `${stack.token}x`, 'astry_scim_' + 'A'.repeat(43), revokedToken];
    const paths = [`/Users/${carolId}`, `/Users/${randomUUID()}`, `/Users?filter=${encodeURIComponent('userName eq "carol@acme.test"')}`, '/Groups', '/ServiceProviderConfig', '/no/such/endpoint'];
    const bodies = new Set<string>();
    for (const token of credentials) {
      for (const path of paths) {
        for (const method of ['GET', 'DELETE']) {
          const answer = await stack.request(method, path, undefined, token);
          assert.equal(answer.status, 401, `${method} ${path} with ${token}`);
          assert.equal(answer.headers.get('www-authenticate'), 'Bearer realm="astry-scim"');
          bodies.add(JSON.stringify(answer.body));
        }
      }
    }
    // Another scheme altogether.
    const basic = await fetch(`${stack.baseUrl}/Users/${carolId}`, { headers: { authorization: 'Basic Y2Fyb2w6cHc=' } });
    assert.equal(basic.status, 401);
    bodies.add(JSON.stringify(await basic.json()));
    assert.deepEqual([...bodies], [JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '401', detail: 'a valid SCIM bearer token is required' })]);
    assert.equal((await stack.db.pool.query(`SELECT active FROM principals WHERE key = 'email:carol@acme.test'`)).rows[0]?.active, true, 'nothing was deleted');
  });

  test('another workspace\'s token sees a user of this one exactly as a user that does not exist', async () => {
    const absent = randomUUID();
    const normalize = (body: unknown, id: string) => JSON.stringify(body).replaceAll(id, '<id>');
    for (const method of ['GET', 'PUT', 'PATCH', 'DELETE']) {
      const body = method === 'PUT' ? USER : method === 'PATCH' ? { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', value: { active: false } }] } : undefined;
      const existing = await stack.request(method, `/Users/${carolId}`, body, otherToken);
      const missing = await stack.request(method, `/Users/${absent}`, body, otherToken);
      assert.equal(existing.status, 404, method);
      assert.equal(missing.status, 404, method);
      assert.equal(normalize(existing.body, carolId), normalize(missing.body, absent), method);
    }
    const filtered = await stack.request('GET', `/Users?filter=${encodeURIComponent('userName eq "carol@acme.test"')}`, undefined, otherToken);
    assert.equal((filtered.body as { totalResults: number }).totalResults, 0);
    // The other workspace provisioning the same person creates its own principal, not a 409.
    assert.equal((await stack.request('POST', '/Users', USER, otherToken)).status, 201);
    const { rows } = await stack.db.pool.query<{ active: boolean }>(`SELECT active FROM principals WHERE workspace_id = $1 AND key = 'email:carol@acme.test'`, [stack.workspaceId]);
    assert.deepEqual(rows, [{ active: true }], 'this workspace\'s carol is untouched');
  });

  test('a revoked token is refused from the next request on; tokens are stored only as hashes', async () => {
    const issued = await createScimToken(stack.db.pool, stack.workspaceId, 'rotating');
    assert.equal((await stack.request('GET', '/Users', undefined, issued.token)).status, 200);
    assert.ok(await revokeScimToken(stack.db.pool, stack.workspaceId, issued.id));
    assert.equal((await stack.request('GET', '/Users', undefined, issued.token)).status, 401);
    assert.equal(await revokeScimToken(stack.db.pool, stack.workspaceId, issued.id), false, 'already revoked');
    const { rows } = await stack.db.pool.query<{ dump: string }>(`SELECT string_agg(t::text, ' ') AS dump FROM scim_tokens t`);
    const dump = rows[0]?.dump ?? '';
    for (const token of [stack.token, issued.token, otherToken]) assert.ok(!dump.includes(token.slice('astry_scim_'.length)), 'no token in clear');
    const listed = await listScimTokens(stack.db.pool, stack.workspaceId);
    assert.deepEqual(listed.map((t) => [t.name, t.revokedAt !== null]), [['test', false], ['old', true], ['rotating', true]]);
    assert.ok(listed[0]?.lastUsedAt, 'use is recorded');
  });
});
