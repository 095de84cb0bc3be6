import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { FILES, GROUP, SITE, USER, type FileKey } from '../fixtures/graph/ids.ts';
import { readDocument } from '../pipeline/store.ts';
import { everyone, expectedReaders, startGraphHarness, type GraphHarness } from './support/graph-harness.ts';

const named = Object.keys(FILES) as FileKey[];

async function chunkRows(h: GraphHarness, sourceId: string): Promise<string> {
  const { rows } = await h.db.pool.query<{ id: string; embedding: string }>(
    `SELECT c.id, c.embedding::text FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.source_id = $1 ORDER BY c.id`, [sourceId],
  );
  return JSON.stringify(rows);
}

describe('SharePoint/OneDrive sync through Microsoft Graph', () => {
  let h: GraphHarness;
  before(async () => {
    h = await startGraphHarness();
  });
  after(async () => {
    await h.close();
  });

  test('a full sync indexes every file of every library, Office and PDF content included', async () => {
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    assert.equal(run.errors, 0);
    const files = h.emulator.state.tenant.items.filter((i) => !i.folder);
    const { rows } = await h.db.pool.query<{ id: string; source_id: string }>(`SELECT id, source_id FROM documents WHERE connection_id = $1`, [h.connectionId]);
    assert.equal(rows.length, files.length);
    const texts = new Map<string, string>();
    for (const row of rows) texts.set(row.source_id, (await readDocument(h.db.pool, h.deps.keys, row.id)).text);
    for (const key of named) assert.ok(texts.get(h.sourceId(key))?.includes(FILES[key].codeword), `${FILES[key].path} extracted`);
    // Delta was asked to report sharing changes (app-only permission deltas).
    assert.ok(h.emulator.calls('delta').every((c) => /deltashowsharingchanges/.test(c.prefer ?? '')));
  });

  test('cases 8–13 hold for every seeded user through the query path', async () => {
    for (const person of everyone(h.emulator)) {
      const can = await h.retrievable(person.id);
      for (const key of named) {
        assert.equal(can.has(h.sourceId(key)), expectedReaders(h.emulator, key).has(person.id), `${person.name} retrieving ${FILES[key].path} (case ${FILES[key].case})`);
      }
    }
    // The named cases, spelled out.
    assert.equal((await h.retrievable('dave')).size, 0, 'a disabled account retrieves nothing');
    const frank = await h.retrievable('frank');
    assert.ok(!frank.has(h.sourceId('allHands')), 'case 10: an organization link excludes guests');
    assert.ok(!frank.has(h.sourceId('handbook')), 'case 13: Everyone except external users excludes guests');
    assert.ok(frank.has(h.sourceId('partnerBrief')) && frank.has(h.sourceId('jointPlan')), 'a guest gets exactly what is granted to them');
    assert.ok(!(await h.retrievable('bob')).has(h.sourceId('pressDraft')), 'case 11: an anonymous link is not public');
    assert.ok(!(await h.retrievable('bob')).has(h.sourceId('archive')), 'case 12: a deleted group grants nothing');
    assert.ok((await h.retrievable('gina')).has(h.sourceId('roadmap')), 'case 12: nested groups expand transitively');
  });

  test('a second run with no changes fetches and embeds nothing', async () => {
    h.emulator.resetRequests();
    const run = await h.sync();
    assert.equal(run.indexed, 0);
    assert.equal(run.chunks, 0);
    assert.equal(h.emulator.calls('permissions').length, 0, 'nothing changed: no permission reads');
  });

  test('a link that expires stops granting at its expiry, without a sync', async () => {
    const minutes = h.emulator.state.itemByPath(h.emulator.state.site(SITE.finance)?.driveId ?? '', FILES.minutes.path);
    const expires = new Date(Date.now() + 4000);
    h.emulator.state.addPermission(minutes.id, {
      ...h.emulator.state.userPermission(USER.sam, 'link-sam'), grantedToV2: undefined,
      grantedToIdentitiesV2: [h.emulator.state.userPermission(USER.sam, 'x').grantedToV2 ?? {}],
      link: { scope: 'users', type: 'view', webUrl: 'https://ex.sharepoint.com/:b:/s/finance/sam' }, expirationDateTime: expires.toISOString(),
    });
    await h.sync();
    assert.ok((await h.retrievable('sam')).has(h.sourceId('minutes')), 'granted until expiry');
    await sleep(Math.max(0, expires.getTime() - Date.now()) + 300);
    assert.ok(!(await h.retrievable('sam')).has(h.sourceId('minutes')), 'expired: no longer retrievable');
  });

  test('a grant removed from a folder revokes its inheriting files after the next run, without re-embedding (case 9)', async () => {
    const state = h.emulator.state;
    const driveId = state.site(SITE.finance)?.driveId ?? '';
    const before = await chunkRows(h, h.sourceId('minutes'));
    assert.ok((await h.retrievable('carol')).has(h.sourceId('minutes')));
    state.removePermission(state.itemByPath(driveId, 'Board').id, 'p-carol');
    const run = await h.sync();
    assert.equal(run.indexed, 0, 'revocation needs no re-embedding');
    const carol = await h.retrievable('carol');
    for (const key of ['minutes', 'pressDraft', 'expiredPreview'] as const) assert.ok(!carol.has(h.sourceId(key)), `carol lost ${key}`);
    assert.ok(carol.has(h.sourceId('allHands')), 'the organization link still grants her');
    assert.ok((await h.retrievable('alice')).has(h.sourceId('minutes')), 'owners keep access');
    assert.equal(await chunkRows(h, h.sourceId('minutes')), before, 'same chunks and vectors');
  });

  test('a user removed from a nested group loses access after the next run (case 12)', async () => {
    h.emulator.state.removeGroupMember(GROUP.projTeam, USER.gina);
    await h.sync();
    assert.ok(!(await h.retrievable('gina')).has(h.sourceId('roadmap')));
    assert.ok((await h.retrievable('carol')).has(h.sourceId('roadmap')));
  });

  test('a file moved into a folder with broken inheritance takes that folder\'s grants', async () => {
    const state = h.emulator.state;
    const driveId = state.site(SITE.finance)?.driveId ?? '';
    const id = h.sourceId('budget');
    assert.ok((await h.retrievable('bob')).has(id));
    state.move(state.itemByPath(driveId, FILES.budget.path).id, state.itemByPath(driveId, 'Board').id);
    const run = await h.sync();
    assert.equal(run.indexed, 0, 'a move is not a content change');
    for (const who of ['bob', 'gina', 'sam'] as const) assert.ok(!(await h.retrievable(who)).has(id), `${who} lost the moved file`);
    assert.ok((await h.retrievable('alice')).has(id));
  });

  test('a folder moved under a restricted folder recomputes every descendant', async () => {
    const state = h.emulator.state;
    const driveId = state.site(SITE.projects)?.driveId ?? '';
    const id = h.sourceId('roadmap');
    assert.ok((await h.retrievable('carol')).has(id));
    state.move(state.itemByPath(driveId, 'Shared').id, state.itemByPath(driveId, 'Legacy').id);
    h.emulator.resetRequests();
    await h.sync();
    assert.ok(!(await h.retrievable('carol')).has(id), 'descendant of the moved folder recomputed');
    assert.ok((await h.retrievable('alice')).has(id));
    assert.ok(h.emulator.calls('delta').length > 0 && h.emulator.calls('permissions').length >= 1);
  });

  test('a sharing link deleted revokes the people it named (case 10)', async () => {
    const state = h.emulator.state;
    const driveId = state.site(SITE.finance)?.driveId ?? '';
    const item = state.itemByPath(driveId, FILES.partnerBrief.path);
    const link = item.permissions.find((p) => p.link?.scope === 'users');
    assert.ok(link);
    state.removePermission(item.id, link.id);
    await h.sync();
    assert.ok(!(await h.retrievable('frank')).has(h.sourceId('partnerBrief')));
    assert.ok(!(await h.retrievable('bob')).has(h.sourceId('partnerBrief')));
  });

  test('a deleted file loses its document, vectors and blob', async () => {
    const state = h.emulator.state;
    const driveId = state.site(SITE.partners)?.driveId ?? '';
    const id = h.sourceId('jointPlan');
    state.deleteItem(state.itemByPath(driveId, FILES.jointPlan.path).id);
    const run = await h.sync();
    assert.ok(run.deleted >= 1);
    const { rows } = await h.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM documents WHERE source_id = $1`, [id]);
    assert.equal(rows[0]?.n, '0');
    assert.ok(!(await h.retrievable('frank')).has(id));
  });
});
