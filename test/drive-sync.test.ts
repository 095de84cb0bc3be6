import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { CODEWORD, DRIVE, EXPECTED_READERS, EXTERNAL, GROUP, ITEM, PEOPLE, email, type ItemKey, type Person } from '../fixtures/drive/ids.ts';
import { readDocument } from '../pipeline/store.ts';
import { startDriveHarness, type DriveHarness } from './support/drive-harness.ts';

const sid = (key: ItemKey) => `file:${ITEM[key]}`;
const indexedKeys = Object.keys(EXPECTED_READERS) as ItemKey[];

/** The seeded files a person can retrieve through searchAuthorized, as item keys. */
async function readableKeys(h: DriveHarness, who: string): Promise<Set<ItemKey>> {
  const readable = await h.readable(who);
  return new Set(indexedKeys.filter((k) => readable.has(sid(k))));
}

async function canRead(h: DriveHarness, who: string, key: ItemKey): Promise<boolean> {
  return (await h.readable(who)).has(sid(key));
}

describe('Google Drive sync: SOURCES.md cases 14-20 through the query path', () => {
  let h: DriveHarness;
  before(async () => {
    h = await startDriveHarness();
  });
  after(async () => {
    await h.close();
  });

  test('a full sync indexes Docs, Sheets and Slides exports, pdf, docx and text, and nothing else', async () => {
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    assert.equal(run.errors, 0);
    const { rows } = await h.db.pool.query<{ id: string; source_id: string }>(`SELECT id, source_id FROM documents WHERE connection_id = $1`, [h.connectionId]);
    assert.deepEqual(new Set(rows.map((r) => r.source_id)), new Set(indexedKeys.map(sid)), 'every readable seeded file and no folder or image');
    for (const row of rows) {
      const key = indexedKeys.find((k) => sid(k) === row.source_id);
      const word = key ? CODEWORD[key] : undefined;
      const { text } = await readDocument(h.db.pool, h.deps.keys, row.id);
      assert.ok(word && text.includes(word), `${row.source_id} content extracted`);
    }
  });

  test('every seeded user retrieves exactly what cases 14-20 grant them', async () => {
    for (const person of PEOPLE) {
      const expected = indexedKeys.filter((k) => (EXPECTED_READERS[k] ?? []).includes(person as Person));
      assert.deepEqual([...(await readableKeys(h, person))].sort(), expected.sort(), `${person}`);
    }
    // Named cases, spelled out.
    assert.equal(await canRead(h, 'bob', 'linkAnyone'), false, 'case 14: anyone-with-link is not public');
    assert.equal(await canRead(h, 'bob', 'linkDomain'), false, 'case 14: domain link-only is not domain-wide');
    assert.equal(await canRead(h, 'sam', 'publicTxt'), true, 'case 15: discoverable anyone');
    assert.equal(await canRead(h, 'gina', 'domainTxt'), true, 'case 15: discoverable domain');
    assert.equal(await canRead(h, 'gina', 'roadmapDoc'), true, 'case 16: per-file direct grant in a shared drive');
    assert.equal(await canRead(h, 'bob', 'salariesSheet'), false, 'case 18: limited folder cuts drive members');
    assert.equal(await canRead(h, 'alice', 'salariesSheet'), true, 'case 18: organizers keep access');
    assert.equal(await canRead(h, 'sam', 'engGroupTxt'), true, 'case 19: nested group');
    assert.equal(await canRead(h, 'carol', 'everyoneTxt'), true, 'case 19: CUSTOMER member');
    assert.equal(await canRead(h, 'carol', 'loopTxt'), true, 'case 19: a group cycle expands');
    assert.deepEqual([...(await h.readable('dave'))], [], 'suspended dave retrieves nothing, not even via groups');
    assert.deepEqual([...(await readableKeys(h, EXTERNAL))], ['partnerTxt'], 'an external gets exactly their explicit grant');
  });

  test('Google identities link to the canonical email principal', async () => {
    const { rows } = await h.db.pool.query<{ key: string; active: boolean }>(
      `SELECT p.key, s.active FROM source_identities s JOIN principals p ON p.id = s.principal_id WHERE s.connection_id = $1 ORDER BY p.key`,
      [h.connectionId],
    );
    assert.deepEqual(rows.map((r) => r.key), PEOPLE.map((p) => `email:${email(p)}`).sort());
    assert.equal(rows.find((r) => r.key === `email:${email('dave')}`)?.active, false);
  });

  test('a second run with no changes fetches and embeds nothing', async () => {
    h.emulator.resetRequests();
    const run = await h.sync();
    assert.equal(run.indexed, 0);
    assert.equal(run.aclUpdated, 0);
    assert.equal(h.emulator.calls('files.export').length + h.emulator.calls('files.get.media').length, 0);
  });

  test('case 20: an expiring grant stops granting at expiry without any sync', async () => {
    const expiresAt = new Date(Date.now() + 4_000).toISOString();
    h.emulator.state.addPermission(ITEM.linkAnyone, { type: 'user', role: 'reader', emailAddress: email('sam'), expirationTime: expiresAt });
    const run = await h.sync();
    assert.equal(run.indexed, 0, 'sharing changes update grants without re-embedding');
    assert.equal(await canRead(h, 'sam', 'linkAnyone'), true, 'granted until expiry');
    await sleep(Date.parse(expiresAt) - Date.now() + 200);
    assert.equal(await canRead(h, 'sam', 'linkAnyone'), false, 'expired, with no change event and no run');
  });

  test('revocations at the source are enforced after the next incremental run, without re-embedding', async () => {
    const state = h.emulator.state;
    const revoke = async (what: string, change: () => void, who: string, keys: ItemKey[]) => {
      for (const k of keys) assert.equal(await canRead(h, who, k), true, `${what}: ${who} reads ${k} before`);
      change();
      const started = Date.now();
      const run = await h.sync();
      const ms = Date.now() - started;
      assert.equal(run.status, 'succeeded');
      assert.equal(run.indexed, 0, `${what}: no re-embedding`);
      for (const k of keys) assert.equal(await canRead(h, who, k), false, `${what}: ${who} lost ${k}`);
      console.log(`# revocation "${what}" enforced by an incremental run of ${ms} ms`);
    };
    await revoke('grant removed', () => state.removePermission(ITEM.roadmapDoc, email('gina')), 'gina', ['roadmapDoc']);
    await revoke('user removed from a nested group', () => state.removeGroupMember(GROUP.platform, email('sam')), 'sam', ['engGroupTxt', 'specPdf', 'designDoc', 'kickoffSlides']);
    await revoke('file moved out of a shared folder (case 17)', () => state.move(ITEM.notesTxt, ITEM.archive), 'gina', ['notesTxt']);
    await revoke('folder moved: descendants recomputed (case 17)', () => state.move(ITEM.subFolder, ITEM.archive), 'gina', ['subPlanMd']);
    await revoke('discoverable link deleted', () => state.removePermission(ITEM.publicTxt, 'anyone'), 'gina', ['publicTxt']);
    await revoke('shared drive membership removed (case 16)', () => state.removeDriveMember(DRIVE.finance, email('bob')), 'bob', ['budgetDocx']);
    await revoke('inheritance disabled on a folder (case 18)', () => state.setInheritedPermissionsDisabled(ITEM.engSpecs, true), 'bob', ['specPdf', 'designDoc']);
    assert.equal(await canRead(h, 'alice', 'specPdf'), true, 'the organizer keeps the limited folder');
    assert.equal(await canRead(h, 'bob', 'kickoffSlides'), true, 'files outside the limited folder keep drive members');
    await revoke('user suspended', () => state.setSuspended(email('carol'), true), 'carol', ['bobNotes', 'everyoneTxt', 'budgetDocx']);
  });

  test('a moved file gains the grants of its new folder, and a trashed file disappears', async () => {
    h.emulator.state.move(ITEM.notesTxt, ITEM.aliceProjects);
    h.emulator.state.trash(ITEM.daveDoc);
    await h.sync();
    assert.equal(await canRead(h, 'gina', 'notesTxt'), true);
    const { rows } = await h.db.pool.query(`SELECT 1 FROM documents WHERE source_id = $1`, [sid('daveDoc')]);
    assert.equal(rows.length, 0);
    assert.equal(await canRead(h, 'bob', 'daveDoc'), false);
  });
});
