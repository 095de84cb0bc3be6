import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadGolden, replay } from './fixtures-scim/replay.ts';
import { startScimStack, type ScimStack } from './fixtures-scim/stack.ts';

/** The body of a ListResponse page, validated enough for these assertions. */
function page(body: unknown): { totalResults: number; itemsPerPage: number; startIndex: number; ids: string[] } {
  assert.ok(typeof body === 'object' && body !== null);
  const { totalResults, itemsPerPage, startIndex, Resources } = body as Record<string, unknown>;
  assert.ok(typeof totalResults === 'number' && typeof itemsPerPage === 'number' && typeof startIndex === 'number' && Array.isArray(Resources));
  return { totalResults, itemsPerPage, startIndex, ids: Resources.map((r: { id: string }) => r.id) };
}

function oktaUser(i: number): Record<string, unknown> {
  const login = `user${String(i).padStart(3, '0')}@okta.local`;
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName: login,
    name: { givenName: 'User', familyName: String(i) },
    emails: [{ primary: true, value: login, type: 'work' }],
    displayName: `User ${i}`,
    externalId: `00u${i}`,
    active: true,
  };
}

describe('golden SCIM request sequences from the IdPs\' documentation', () => {
  let stack: ScimStack;
  before(async () => {
    stack = await startScimStack();
  });
  after(async () => {
    await stack?.close();
  });

  test('Okta: connection test, filter before create, create, 409, PUT, deactivate/reactivate, group push and membership', async () => {
    await replay(stack, await loadGolden('okta'));
  });

  test('Entra: query before create, create, PATCH variants (capitalized, string booleans, path-keyed replace), disable, groups, delete', async () => {
    await replay(stack, await loadGolden('entra'));
  });

  test('pagination over 250 users: Okta\'s startIndex/count pages are complete, disjoint and in a stable order', async () => {
    const created: string[] = [];
    for (let i = 0; i < 250; i++) {
      const answer = await stack.request('POST', '/Users', oktaUser(i));
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      created.push(page({ totalResults: 0, itemsPerPage: 0, startIndex: 1, Resources: [answer.body] }).ids[0] ?? '');
    }
    const filter = encodeURIComponent('userName ew "@okta.local" and userName sw "user"');
    const seen: string[] = [];
    for (let startIndex = 1; ; startIndex += 100) {
      const answer = await stack.request('GET', `/Users?filter=${filter}&startIndex=${startIndex}&count=100`);
      assert.equal(answer.status, 200);
      const p = page(answer.body);
      assert.equal(p.totalResults, 250);
      assert.equal(p.startIndex, startIndex);
      assert.equal(p.itemsPerPage, p.ids.length);
      if (p.ids.length === 0) break;
      seen.push(...p.ids);
      // A user provisioned between two pages lands after the last page, never shifting the others.
      if (startIndex === 101) assert.equal((await stack.request('POST', '/Users', { ...oktaUser(999), userName: 'late@other.local', emails: [] })).status, 201);
    }
    assert.deepEqual(seen, created, 'every user once, in provisioning order');
    const again = page((await stack.request('GET', `/Users?filter=${filter}&startIndex=101&count=100`)).body);
    assert.deepEqual(again.ids, created.slice(100, 200), 'the same page twice is the same page');
    const countOnly = page((await stack.request('GET', `/Users?filter=${filter}&count=0`)).body);
    assert.deepEqual([countOnly.totalResults, countOnly.ids.length], [250, 0]);
    const beyond = page((await stack.request('GET', `/Users?filter=${filter}&startIndex=1000`)).body);
    assert.deepEqual([beyond.totalResults, beyond.ids.length], [250, 0]);
  });
});
