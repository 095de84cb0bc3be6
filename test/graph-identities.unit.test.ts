import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { claimPrincipal, itemAcl, siteGroupMembers } from '../connectors/graph/acl.ts';
import { IdentityIndex, itemSubjects, toIdentity } from '../connectors/graph/identities.ts';
import { DriveItemSchema, PermissionSchema } from '../connectors/graph/schemas.ts';

const T = 'tenant-1';
const users = [
  { id: 'a', displayName: 'Alice', mail: 'Alice@ex.com', userPrincipalName: 'alice@ex.com', accountEnabled: true, userType: 'Member' },
  { id: 'd', displayName: 'Dave', mail: 'dave@ex.com', userPrincipalName: 'dave@ex.com', accountEnabled: false, userType: 'Member' },
  { id: 'f', displayName: 'Frank', mail: 'alice@ex.com', userPrincipalName: 'alice_ex.com#EXT#@exdemo.onmicrosoft.com', accountEnabled: true, userType: 'Guest' },
];
const index = new IdentityIndex(users, T);
const ctx = { tenantId: T, siteId: 's1', identities: index };
const perm = (raw: unknown) => PermissionSchema.parse(raw);

describe('Graph identities and ACL rules', () => {
  test('members link by lowercased mail; a guest claiming our address stays its own principal', () => {
    assert.equal(toIdentity(users[0]!, T).user.key, 'email:alice@ex.com');
    assert.equal(toIdentity(users[2]!, T).user.key, `graph:${T}:f`);
    assert.equal(toIdentity(users[2]!, T).kind, 'external');
  });

  test('link scopes: organization -> internal special, users -> listed people, anonymous and existingAccess -> nothing', () => {
    const alice = { user: { id: 'a', displayName: 'Alice' } };
    assert.deepEqual(itemAcl([perm({ id: '1', link: { scope: 'organization' } })], ctx).map((g) => g.key), [`graph:${T}:internal`]);
    assert.deepEqual(itemAcl([perm({ id: '2', link: { scope: 'users' }, grantedToIdentitiesV2: [alice] })], ctx).map((g) => g.key), ['email:alice@ex.com']);
    assert.deepEqual(itemAcl([perm({ id: '3', link: { scope: 'anonymous' } }), perm({ id: '4', link: { scope: 'existingAccess' } })], ctx), []);
  });

  test('a disabled account is never granted; the later expiry of a double grant wins, none beats any', () => {
    assert.deepEqual(itemAcl([perm({ id: '1', grantedToV2: { user: { id: 'd', displayName: 'Dave' } } })], ctx), []);
    const a = { user: { id: 'a', displayName: 'Alice' } };
    const acl = itemAcl([
      perm({ id: '1', link: { scope: 'users' }, grantedToIdentitiesV2: [a], expirationDateTime: '2030-01-01T00:00:00Z' }),
      perm({ id: '2', link: { scope: 'users' }, grantedToIdentitiesV2: [a], expirationDateTime: '2031-01-01T00:00:00Z' }),
    ], ctx);
    assert.equal(acl[0]?.expiresAt?.toISOString(), '2031-01-01T00:00:00.000Z');
    const forever = itemAcl([perm({ id: '1', grantedToV2: a }), perm({ id: '2', link: { scope: 'users' }, grantedToIdentitiesV2: [a], expirationDateTime: '2030-01-01T00:00:00Z' })], ctx);
    assert.equal(forever[0]?.expiresAt, undefined);
  });

  test('SharePoint claims map to groups, owners and the specials', () => {
    const g = '0000000a-0000-4000-8000-000000000001';
    assert.equal(claimPrincipal(`c:0o.c|federateddirectoryclaimprovider|${g}`, T)?.key, `graph:${T}:group:${g}`);
    assert.equal(claimPrincipal(`c:0o.c|federateddirectoryclaimprovider|${g}_o`, T)?.key, `graph:${T}:group:${g}:owners`);
    assert.equal(claimPrincipal('c:0-.f|rolemanager|spo-grid-all-users/x', T)?.key, `graph:${T}:internal`);
    assert.equal(claimPrincipal('c:0(.s|true', T)?.key, `graph:${T}:everyone`);
    const members = siteGroupMembers([
      { Id: 1, LoginName: 'i:0#.f|membership|alice@ex.com', PrincipalType: 1 },
      { Id: 2, LoginName: 'i:0#.f|membership|dave@ex.com', PrincipalType: 1 },
    ], ctx);
    assert.deepEqual(members.map((m) => m.key), ['email:alice@ex.com']);
  });

  test('a file\'s subjects: creator and last modifier as authors, by directory id; applications are nobody', () => {
    const item = (raw: Record<string, unknown>) => DriveItemSchema.parse({ id: 'i', ...raw });
    const app = { application: { id: 'app-1', displayName: 'Migration tool' } };
    assert.deepEqual(itemSubjects(item({ createdBy: app, lastModifiedBy: { user: { id: 'a', displayName: 'Alice' } } }), index), [{ sourceUserId: 'a', role: 'author' }]);
    assert.deepEqual(itemSubjects(item({ createdBy: app, lastModifiedBy: app }), index), []);
    assert.deepEqual(itemSubjects(item({}), index), [], 'no facets: no subjects');
    // The same person twice is one subject; a siteUser-only set resolves by login name; an unknown user keeps Graph's id.
    const bySite = { siteUser: { id: '7', displayName: 'Alice', loginName: 'i:0#.f|membership|alice@ex.com' } };
    assert.deepEqual(itemSubjects(item({ createdBy: bySite, lastModifiedBy: { user: { id: 'a' } } }), index), [{ sourceUserId: 'a', role: 'author' }]);
    assert.deepEqual(itemSubjects(item({ createdBy: { user: { id: 'gone-user' } } }), index).map((s) => s.sourceUserId), ['gone-user']);
    assert.deepEqual(itemSubjects(item({ createdBy: { user: { displayName: 'SharePoint App' } } }), index), [], 'a user facet without id or known address');
  });
});
