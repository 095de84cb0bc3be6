import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createConnection } from '../db/connections.ts';
import { ensurePrincipals, principalSet, replaceGroupMembers } from '../db/principals.ts';
import { LocalKeyFileProvider } from '../vault/key-provider.ts';
import { startScimStack, type ScimStack } from './fixtures-scim/stack.ts';

const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const user = (userName: string, email: string) => ({ userName, emails: [{ value: email, type: 'work', primary: true }], active: true });
const id = (body: unknown) => String(Reflect.get(Object(body), 'id'));

describe('SCIM users are the canonical users', () => {
  let s: ScimStack;
  const principal = async (key: string) =>
    (await s.db.pool.query<{ id: number; active: boolean; display_name: string }>(`SELECT id, active, display_name FROM principals WHERE workspace_id = $1 AND kind = 'user' AND key = $2`, [s.workspaceId, key])).rows[0];
  before(async () => {
    s = await startScimStack();
  });
  after(async () => {
    await s?.close();
  });

  test('provisioning adopts the principal a source sync already made for that address (grants and identities stay)', async () => {
    const made = await ensurePrincipals(s.db.pool, s.workspaceId, [{ kind: 'user', key: 'email:dana@acme.test' }]);
    const created = await s.request('POST', '/Users', { ...user('Dana@Acme.test', 'Dana@Acme.test'), displayName: 'Dana Scully' });
    assert.equal(created.status, 201);
    assert.deepEqual(await principal('email:dana@acme.test'), { id: made.get('user:email:dana@acme.test'), active: true, display_name: 'Dana Scully' });
  });

  test('an address change renames the principal in place when the new address is free', async () => {
    const before = await principal('email:erin@acme.test');
    assert.equal(before, undefined);
    const created = await s.request('POST', '/Users', user('erin', 'erin@acme.test'));
    const first = await principal('email:erin@acme.test');
    const patched = await s.request('PATCH', `/Users/${id(created.body)}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'emails[type eq "work"].value', value: 'erin.new@acme.test' }] });
    assert.equal(patched.status, 200);
    assert.equal(await principal('email:erin@acme.test'), undefined);
    assert.equal((await principal('email:erin.new@acme.test'))?.id, first?.id);
  });

  test('an address change to one a sync already knows moves the user there with its directory groups; the old principal is deactivated', async () => {
    const created = await s.request('POST', '/Users', user('fred', 'fred@acme.test'));
    const fredId = id(created.body);
    const group = await s.request('POST', '/Groups', { displayName: 'Ops', members: [{ value: fredId }] });
    const groupPrincipal = (await s.db.pool.query<{ principal_id: number }>(`SELECT principal_id FROM scim_resources WHERE id = $1`, [id(group.body)])).rows[0]?.principal_id;
    const old = await principal('email:fred@acme.test');
    const known = (await ensurePrincipals(s.db.pool, s.workspaceId, [{ kind: 'user', key: 'email:fred@corp.test' }])).get('user:email:fred@corp.test');
    const patched = await s.request('PATCH', `/Users/${fredId}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'emails[type eq "work"].value', value: 'fred@corp.test' }] });
    assert.equal(patched.status, 200);
    assert.deepEqual(await principal('email:fred@acme.test'), { ...old, active: false });
    assert.equal((await principal('email:fred@corp.test'))?.active, true);
    assert.ok(known !== undefined && groupPrincipal !== undefined);
    assert.ok((await principalSet(s.db.pool, known)).includes(groupPrincipal), 'the group followed');
    assert.ok(old && !(await principalSet(s.db.pool, old.id)).includes(groupPrincipal));
    const members = await s.request('GET', `/Groups/${id(group.body)}`);
    assert.deepEqual(Reflect.get(Object(members.body), 'members'), [{ value: fredId, type: 'User', $ref: `${s.baseUrl}/Users/${fredId}` }]);
  });

  test('an address another provisioned user has is a 409 and changes nothing', async () => {
    const a = await s.request('POST', '/Users', user('gail', 'gail@acme.test'));
    await s.request('POST', '/Users', user('hank', 'hank@acme.test'));
    const clash = await s.request('PATCH', `/Users/${id(a.body)}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'emails[type eq "work"].value', value: 'HANK@acme.test' }] });
    assert.equal(clash.status, 409);
    assert.equal(Reflect.get(Object(clash.body), 'scimType'), 'uniqueness');
    const emails: unknown = Reflect.get(Object((await s.request('GET', `/Users/${id(a.body)}`)).body), 'emails');
    assert.deepEqual(emails, [{ value: 'gail@acme.test', type: 'work', primary: true }]);
  });

  test('two IdP workers creating the same user at once: one 201, one 409', async () => {
    const [x, y] = await Promise.all([s.request('POST', '/Users', user('ivy', 'ivy@acme.test')), s.request('POST', '/Users', user('IVY', 'ivy@acme.test'))]);
    assert.deepEqual([x.status, y.status].sort(), [201, 409]);
  });

  test('directory memberships and a connector\'s live side by side: neither replaces the other\'s', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'astry-scim-p-'));
    const keys = await LocalKeyFileProvider.open(join(dir, 'kek'));
    const connection = await createConnection(s.db.pool, keys, { workspaceId: s.workspaceId, name: 'slack', source: 'slack', config: {}, token: 'x' });
    const jo = await s.request('POST', '/Users', user('jo', 'jo@acme.test'));
    const group = await s.request('POST', '/Groups', { displayName: 'Shared', members: [{ value: id(jo.body) }] });
    const groupKey = `scim:group:${id(group.body)}`;
    // The connector reports the same group with a member of its own, then with none.
    await replaceGroupMembers(s.db.pool, s.workspaceId, connection.id, [{ group: { kind: 'group', key: groupKey }, displayName: 'Shared', members: [{ kind: 'user', key: 'email:kim@acme.test' }] }]);
    assert.ok((await principalSetKeys(s, 'email:kim@acme.test')).includes(groupKey), 'connector membership counts');
    assert.ok((await principalSetKeys(s, 'email:jo@acme.test')).includes(groupKey), 'directory membership kept');
    await replaceGroupMembers(s.db.pool, s.workspaceId, connection.id, [{ group: { kind: 'group', key: groupKey }, displayName: 'Shared', members: [] }]);
    assert.ok((await principalSetKeys(s, 'email:jo@acme.test')).includes(groupKey), 'a sync does not remove directory members');
    assert.ok(!(await principalSetKeys(s, 'email:kim@acme.test')).includes(groupKey));
    // And a SCIM change leaves the connector's rows alone.
    await replaceGroupMembers(s.db.pool, s.workspaceId, connection.id, [{ group: { kind: 'group', key: groupKey }, displayName: 'Shared', members: [{ kind: 'user', key: 'email:jo@acme.test' }] }]);
    assert.equal((await s.request('PATCH', `/Groups/${id(group.body)}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: 'members' }] })).status, 200);
    assert.ok((await principalSetKeys(s, 'email:jo@acme.test')).includes(groupKey), 'still a member through the connector');
  });
});

async function principalSetKeys(s: ScimStack, key: string): Promise<string[]> {
  const { rows } = await s.db.pool.query<{ id: number }>(`SELECT id FROM principals WHERE workspace_id = $1 AND key = $2`, [s.workspaceId, key]);
  const self = rows[0]?.id;
  if (self === undefined) return [];
  const ids = await principalSet(s.db.pool, self);
  const named = await s.db.pool.query<{ key: string }>(`SELECT key FROM principals WHERE id = ANY($1::int[])`, [ids]);
  return named.rows.map((r) => r.key);
}
