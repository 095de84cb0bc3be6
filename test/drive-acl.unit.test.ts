import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { driveGroups, fileAcl, googleGroupMembers, type AclContext } from '../connectors/drive/acl.ts';
import { fileSubjects, subjectEmails } from '../connectors/drive/documents.ts';
import { FileSchema, PermissionSchema, type DrivePermission } from '../connectors/drive/schemas.ts';

const ctx: AclContext = { customerId: 'C1', domains: new Set(['ex.com']), inactive: new Set(['dave@ex.com']) };
const p = (raw: Record<string, unknown>): DrivePermission => PermissionSchema.parse(raw);
const keys = (grants: { key: string }[]) => grants.map((g) => g.key).sort();

describe('Drive permissions -> grants', () => {
  test('link-only sharing grants nothing; discoverable sharing grants the special (cases 14, 15)', () => {
    const acl = fileAcl(ctx, {}, [
      p({ type: 'anyone', role: 'reader', allowFileDiscovery: false }),
      p({ type: 'domain', role: 'reader', domain: 'ex.com', allowFileDiscovery: false }),
      p({ type: 'user', role: 'owner', emailAddress: 'Alice@ex.com' }),
    ], false);
    assert.deepEqual(keys(acl), ['email:alice@ex.com']);
    const open = fileAcl(ctx, {}, [p({ type: 'anyone', role: 'reader', allowFileDiscovery: true }), p({ type: 'domain', role: 'reader', domain: 'ex.com', allowFileDiscovery: true })], false);
    assert.deepEqual(keys(open), ['drive:C1:anyone', 'drive:C1:domain:ex.com']);
  });

  test('shared drive membership goes through the drive group; limited folders keep organizers only (cases 16, 18)', () => {
    const perms = [
      p({ type: 'user', role: 'organizer', emailAddress: 'alice@ex.com', permissionDetails: [{ permissionType: 'member', role: 'organizer', inherited: true }] }),
      p({ type: 'user', role: 'reader', emailAddress: 'gina@ex.com', permissionDetails: [{ permissionType: 'file', role: 'reader', inherited: false }, { permissionType: 'member', role: 'reader', inherited: true }] }),
    ];
    assert.deepEqual(keys(fileAcl(ctx, { driveId: 'D1' }, perms, false)), ['drive:C1:shareddrive:D1', 'email:gina@ex.com']);
    assert.deepEqual(keys(fileAcl(ctx, { driveId: 'D1' }, perms, true)), ['drive:C1:shareddrive:D1:organizers', 'email:gina@ex.com']);
  });

  test('expiry is carried, deleted accounts and suspended users grant nothing, externals stay unlinked (case 20)', () => {
    const acl = fileAcl(ctx, {}, [
      p({ type: 'user', role: 'reader', emailAddress: 'sam@ex.com', expirationTime: '2030-01-01T00:00:00Z' }),
      p({ type: 'user', role: 'reader', emailAddress: 'ghost@ex.com', deleted: true }),
      p({ type: 'user', role: 'reader', emailAddress: 'dave@ex.com' }),
      p({ type: 'user', role: 'reader', emailAddress: 'Xena@Acme.example' }),
    ], false);
    assert.deepEqual(keys(acl), ['drive:C1:user:xena@acme.example', 'email:sam@ex.com']);
    assert.equal(acl.find((g) => g.key === 'email:sam@ex.com')?.expiresAt?.toISOString(), '2030-01-01T00:00:00.000Z');
  });

  test('derived group members: users and CUSTOMER, suspended skipped (case 19)', () => {
    const members = googleGroupMembers(ctx, { id: 'g', email: 'Eng@ex.com', name: 'Eng' }, [
      { type: 'USER', email: 'bob@ex.com', status: 'ACTIVE' },
      { type: 'USER', email: 'dave@ex.com', status: 'SUSPENDED' },
      { type: 'GROUP', email: 'platform@ex.com', status: 'ACTIVE' },
      { type: 'CUSTOMER', id: 'C1', status: 'ACTIVE' },
    ]);
    assert.equal(members.group.key, 'drive:C1:group:eng@ex.com');
    assert.deepEqual(keys(members.members), ['drive:C1:customer', 'email:bob@ex.com']);
  });

  test('drive members include groups and domains; organizers are their own group', () => {
    const [all, organizers] = driveGroups(ctx, { id: 'D1', name: 'Eng' }, [
      p({ type: 'user', role: 'organizer', emailAddress: 'alice@ex.com' }),
      p({ type: 'group', role: 'writer', emailAddress: 'eng@ex.com' }),
      p({ type: 'domain', role: 'reader', domain: 'ex.com' }),
    ]);
    assert.deepEqual(keys(all?.members ?? []), ['drive:C1:domain:ex.com', 'drive:C1:group:eng@ex.com', 'email:alice@ex.com']);
    assert.deepEqual(keys(organizers?.members ?? []), ['email:alice@ex.com']);
  });
});

describe('Drive files -> subjects (provenance)', () => {
  const file = (raw: Record<string, unknown>) => FileSchema.parse({ id: 'f1', mimeType: 'text/plain', modifiedTime: '2026-10-01T00:00:00Z', ...raw });
  const directory = new Map([['alice@ex.com', 'u-alice'], ['bob@ex.com', 'u-bob']]);

  test('owners and the last modifier are authors, by directory id; an address outside the directory is left out', () => {
    const mine = file({ owners: [{ emailAddress: 'Alice@ex.com' }], lastModifyingUser: { emailAddress: 'bob@ex.com', permissionId: '123' } });
    assert.deepEqual(subjectEmails(mine), ['alice@ex.com', 'bob@ex.com']);
    assert.deepEqual(fileSubjects(mine, (e) => directory.get(e)), [{ sourceUserId: 'u-alice', role: 'author' }, { sourceUserId: 'u-bob', role: 'author' }]);
    const shared = file({ lastModifyingUser: { emailAddress: 'xena@acme.example' } });
    assert.deepEqual(fileSubjects(shared, (e) => directory.get(e)), [], 'a shared drive file edited by an outsider names nobody');
    const self = file({ owners: [{ emailAddress: 'alice@ex.com' }], lastModifyingUser: { emailAddress: 'ALICE@ex.com' } });
    assert.deepEqual(fileSubjects(self, (e) => directory.get(e)), [{ sourceUserId: 'u-alice', role: 'author' }]);
    assert.deepEqual(fileSubjects(file({ lastModifyingUser: {} }), (e) => directory.get(e)), [], 'a hidden address names nobody');
  });
});
