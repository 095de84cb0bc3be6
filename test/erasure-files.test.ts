/**
 * Erasing a person from SharePoint/OneDrive and Google Drive documents: files record their creator,
 * owner and last modifier as provenance; an erasure deletes them with every derived artifact, and
 * suppression keeps later syncs from bringing them back.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import type { Queryable } from '../db/pool.ts';
import { startErasure, type ErasureStarter } from '../erasure/request.ts';
import { CODEWORD, ITEM, PEOPLE as DRIVE_PEOPLE, email, type ItemKey } from '../fixtures/drive/ids.ts';
import { FILES, USER, type FileKey } from '../fixtures/graph/ids.ts';
import { buildText } from '../fixtures/slack/files.ts';
import type { KeyProvider } from '../vault/key-provider.ts';
import type { ErasureServices } from '../workflows/erasure/activities.ts';
import { startDriveHarness, type DriveHarness } from './support/drive-harness.ts';
import { auditTrailIn } from './support/audit-trail.ts';
import { allDecryptedTexts } from './support/erasure-probe.ts';
import { everyone, startGraphHarness, type GraphHarness } from './support/graph-harness.ts';

/** Erasure services (audit trail + signer) for a harness's worker, in a temporary directory. */
async function erasureServices(pool: pg.Pool, dir: string): Promise<ErasureServices & { close(): Promise<void> }> {
  const { audit, signer } = await auditTrailIn(pool, dir);
  return { audit, signer, close: () => audit.close() };
}

/** Each stored document's subjects, `<role>:<source user id>` sorted, by source id (documents without any: absent). */
/** What a harness needs for an erasure to run on its sync worker. */
interface ErasableHarness {
  db: { pool: pg.Pool };
  deps: object & { keys: KeyProvider };
  client: ErasureStarter['client'];
  taskQueue: string;
  sync(): Promise<{ status: string }>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

/** Gives the harness's sync worker the erasure services, runs a first sync, and returns how to start and clean up. */
async function prepareErasure(h: ErasableHarness, name: string): Promise<{ starter: ErasureStarter; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `astry-erasure-files-${name}-`));
  const services = await erasureServices(h.db.pool, dir);
  // The sync worker runs the erasure activities too; they read `erasure` from its deps on first use.
  Object.assign(h.deps, { erasure: services });
  const run = await h.sync();
  assert.equal(run.status, 'succeeded');
  return {
    starter: { pool: h.db.pool, keys: h.deps.keys, client: h.client, taskQueue: h.taskQueue },
    async cleanup() {
      await h.stopWorker();
      await services.close();
      await h.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function subjectsBySource(db: Queryable, connectionId: string): Promise<Map<string, string[]>> {
  const { rows } = await db.query<{ source_id: string; subject: string }>(
    `SELECT d.source_id, s.role || ':' || s.source_user_id AS subject FROM documents d JOIN document_subjects s ON s.document_id = d.id
     WHERE d.connection_id = $1 ORDER BY d.source_id, subject`,
    [connectionId],
  );
  const out = new Map<string, string[]>();
  for (const r of rows) out.set(r.source_id, [...(out.get(r.source_id) ?? []), r.subject]);
  return out;
}

async function documentIds(db: Queryable, connectionId: string, sourceIds: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(`SELECT id FROM documents WHERE connection_id = $1 AND source_id = ANY($2::text[])`, [connectionId, sourceIds]);
  return rows.map((r) => r.id);
}

/** Rows that still derive from the given documents, per table. */
async function leftovers(db: Queryable, ids: readonly string[]): Promise<Record<string, number>> {
  const { rows } = await db.query<Record<string, number>>(
    `SELECT (SELECT count(*) FROM documents WHERE id = ANY($1::bigint[]))::int AS documents,
            (SELECT count(*) FROM chunks WHERE document_id = ANY($1::bigint[]))::int AS chunks,
            (SELECT count(*) FROM vault_blobs WHERE document_id = ANY($1::bigint[]))::int AS "vaultBlobs",
            (SELECT count(*) FROM document_subjects WHERE document_id = ANY($1::bigint[]))::int AS subjects`,
    [ids],
  );
  return rows[0] ?? {};
}

async function stored(db: Queryable, connectionId: string): Promise<Set<string>> {
  const { rows } = await db.query<{ source_id: string }>(`SELECT source_id FROM documents WHERE connection_id = $1`, [connectionId]);
  return new Set(rows.map((r) => r.source_id));
}

/** Codewords still present anywhere in the decrypted index (vault blobs and chunks). */
async function codewordsInIndex(h: { db: { pool: Queryable }; deps: { keys: KeyProvider } }, words: readonly string[]): Promise<string[]> {
  const { blobs, chunks } = await allDecryptedTexts(h.db.pool, h.deps.keys);
  const all = [...blobs.values(), ...chunks.values()].join('\n');
  return words.filter((w) => all.includes(w));
}

describe('erasing a person from SharePoint/OneDrive files (Graph)', () => {
  let h: GraphHarness;
  let starter: ErasureStarter;
  let cleanup: (() => Promise<void>) | undefined;
  // gina created the roadmap and last modified the budget.
  const hers: FileKey[] = ['roadmap', 'budget'];
  const words = hers.map((k) => FILES[k].codeword);

  before(async () => {
    h = await startGraphHarness({ tenant: { files: 4, fillerUsers: 2 } });
    ({ starter, cleanup } = await prepareErasure(h, 'graph'));
  });
  after(() => cleanup?.());

  test('every file records its creator and last modifier, resolved to the canonical user; an application is nobody', async () => {
    const subjects = await subjectsBySource(h.db.pool, h.connectionId);
    assert.deepEqual(subjects.get(h.sourceId('roadmap')), [`author:${USER.gina}`]);
    assert.deepEqual(subjects.get(h.sourceId('budget')), [`author:${USER.alice}`, `author:${USER.gina}`].sort());
    assert.deepEqual(subjects.get(h.sourceId('launchPlan')), [`author:${USER.bob}`, `author:${USER.carol}`].sort());
    assert.deepEqual(subjects.get(h.sourceId('partnerBrief')), [`author:${USER.alice}`, `author:${USER.frank}`].sort(), 'a guest editor is a subject too');
    assert.equal(subjects.get(h.sourceId('archive')), undefined, 'written by an application: no subject');
    const all = await stored(h.db.pool, h.connectionId);
    assert.deepEqual([...all].filter((id) => !subjects.has(id)), [h.sourceId('archive')], 'every other file has provenance');
    const { rows } = await h.db.pool.query<{ key: string }>(
      `SELECT DISTINCT p.key FROM document_subjects s JOIN principals p ON p.id = s.principal_id WHERE s.connection_id = $1 AND s.source_user_id = $2`,
      [h.connectionId, USER.gina],
    );
    assert.deepEqual(rows.map((r) => r.key), ['email:gina@ex.com']);
  });

  test('an index from before provenance is backfilled by one re-enumeration, without re-embedding', async () => {
    const before = await subjectsBySource(h.db.pool, h.connectionId);
    const { rows: chunksBefore } = await h.db.pool.query<{ n: string }>(`SELECT string_agg(id::text, ',' ORDER BY id) AS n FROM chunks`);
    // What an index written before files had subjects looks like: no rows, cursors without the marker.
    await h.db.pool.query(`DELETE FROM document_subjects WHERE connection_id = $1`, [h.connectionId]);
    await h.db.pool.query(`UPDATE sync_cursors SET cursor = cursor - 'subjects' WHERE connection_id = $1`, [h.connectionId]);
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    assert.equal(run.indexed, 0, 'nothing re-embedded');
    assert.equal(run.unchanged, (await stored(h.db.pool, h.connectionId)).size, 'every unchanged file was seen again');
    assert.deepEqual(await subjectsBySource(h.db.pool, h.connectionId), before);
    const { rows: chunksAfter } = await h.db.pool.query<{ n: string }>(`SELECT string_agg(id::text, ',' ORDER BY id) AS n FROM chunks`);
    assert.deepEqual(chunksAfter, chunksBefore);
    const next = await h.sync();
    assert.equal(next.unchanged, 0, 'the backfill happens once: the next run is incremental again');
  });

  test('ACL-only updates, direct and inherited from a folder, keep the provenance', async () => {
    const before = await subjectsBySource(h.db.pool, h.connectionId);
    const state = h.emulator.state;
    const finance = state.site('finance');
    assert.ok(finance);
    state.addPermission(state.itemByPath(finance.driveId, 'Board').id, state.userPermission(USER.sam, 'p-sam-board'));
    state.addPermission(state.itemByPath(finance.driveId, FILES.budget.path).id, state.userPermission(USER.carol, 'p-carol-budget'));
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    assert.equal(run.indexed, 0);
    assert.ok(run.aclUpdated >= 6, `grants rewritten: ${run.aclUpdated}`);
    assert.deepEqual(await subjectsBySource(h.db.pool, h.connectionId), before);
  });

  test('erasing gina removes her files and everything derived from them; files by others remain', async () => {
    const ids = await documentIds(h.db.pool, h.connectionId, hers.map((k) => h.sourceId(k)));
    assert.equal(ids.length, 2);
    const had = await leftovers(h.db.pool, ids);
    assert.ok((had.chunks ?? 0) >= 2 && had.vaultBlobs === 2, JSON.stringify(had));
    assert.deepEqual(await codewordsInIndex(h, words), words, 'the probe sees her files before');
    const others = [...(await stored(h.db.pool, h.connectionId))].filter((id) => !hers.some((k) => h.sourceId(k) === id));

    const handle = await startErasure(starter, { workspaceId: h.workspaceId, subject: 'gina@ex.com', requestedBy: 'test:dpo', reason: 'DPO-GRAPH' });
    const result = await handle.result();
    assert.equal(result.erased.documents, 2);

    assert.deepEqual(await leftovers(h.db.pool, ids), { documents: 0, chunks: 0, vaultBlobs: 0, subjects: 0 });
    assert.deepEqual(await codewordsInIndex(h, words), []);
    for (const person of everyone(h.emulator)) {
      const can = await h.retrievable(person.id);
      for (const key of hers) assert.ok(!can.has(h.sourceId(key)), `${person.name} cannot retrieve ${FILES[key].path}`);
    }
    assert.deepEqual([...(await stored(h.db.pool, h.connectionId))].sort(), others.sort(), 'files by other people remain');
    const alice = await h.retrievable('alice');
    for (const key of ['launchPlan', 'minutes', 'handbook'] as const) assert.ok(alice.has(h.sourceId(key)), `alice still retrieves ${key}`);
  });

  test('later syncs do not bring her files back: an edit, a sharing change and a full re-enumeration', async () => {
    const state = h.emulator.state;
    const projects = state.site('projects');
    const finance = state.site('finance');
    assert.ok(projects && finance);
    state.editContent(state.itemByPath(projects.driveId, FILES.roadmap.path).id, FILES.roadmap.codeword, 'gina rewrote the roadmap', USER.gina);
    state.addPermission(state.itemByPath(finance.driveId, FILES.budget.path).id, state.userPermission(USER.bob, 'p-bob-budget'));
    const incremental = await h.sync();
    assert.equal(incremental.status, 'succeeded');
    assert.equal(incremental.indexed, 0, 'her edited file is refused');
    state.expireDeltaTokens(finance.driveId);
    state.expireDeltaTokens(projects.driveId);
    const resync = await h.sync();
    assert.equal(resync.status, 'succeeded');
    const now = await stored(h.db.pool, h.connectionId);
    for (const key of hers) assert.ok(!now.has(h.sourceId(key)), `${FILES[key].path} is not re-imported`);
    assert.deepEqual(await codewordsInIndex(h, words), []);
    assert.ok(now.has(h.sourceId('launchPlan')) && now.has(h.sourceId('minutes')), 'others\' files are still synced');
  });
});

describe('erasing a person from Google Drive files', () => {
  let h: DriveHarness;
  let starter: ErasureStarter;
  let cleanup: (() => Promise<void>) | undefined;
  // bob owns bob-notes.md (My Drive) and last modified spec.pdf (a shared drive file: no owner).
  const his: ItemKey[] = ['bobNotes', 'specPdf'];
  const sid = (key: ItemKey): string => `file:${ITEM[key]}`;
  const words = his.map((k) => CODEWORD[k] ?? '');

  before(async () => {
    // Every run re-lists every file (a full rescan is due after 1 ms), as the daily rescan does: the cases below need it.
    h = await startDriveHarness({ config: { fullRescanHours: 1 / 3_600_000 } });
    ({ starter, cleanup } = await prepareErasure(h, 'drive'));
  });
  after(() => cleanup?.());

  test('every file records its owner and last modifier by directory id; an outsider is left out', async () => {
    const subjects = await subjectsBySource(h.db.pool, h.connectionId);
    assert.deepEqual(subjects.get(sid('bobNotes')), ['author:u-bob'], 'My Drive: owner (and last modifier)');
    assert.deepEqual(subjects.get(sid('specPdf')), ['author:u-bob'], 'shared drive: the last modifier');
    assert.deepEqual(subjects.get(sid('notesTxt')), ['author:u-alice', 'author:u-gina']);
    assert.deepEqual(subjects.get(sid('daveDoc')), ['author:u-dave'], 'a suspended owner is still named');
    assert.equal(subjects.get(sid('budgetDocx')), undefined, 'last modified by someone outside the directory: no subject');
    const { rows } = await h.db.pool.query<{ key: string }>(
      `SELECT DISTINCT p.key FROM document_subjects s JOIN principals p ON p.id = s.principal_id WHERE s.connection_id = $1 AND s.source_user_id = 'u-bob'`,
      [h.connectionId],
    );
    assert.deepEqual(rows.map((r) => r.key), [`email:${email('bob')}`]);
  });

  test('unchanged files get their provenance on the next listing, and ACL-only updates keep it, without re-embedding', async () => {
    const before = await subjectsBySource(h.db.pool, h.connectionId);
    await h.db.pool.query(`DELETE FROM document_subjects WHERE connection_id = $1`, [h.connectionId]);
    const backfill = await h.sync();
    assert.equal(backfill.status, 'succeeded');
    assert.equal(backfill.indexed, 0);
    assert.deepEqual(await subjectsBySource(h.db.pool, h.connectionId), before);

    h.emulator.state.addPermission(ITEM.notesTxt, { type: 'user', role: 'reader', emailAddress: email('sam') });
    const shared = await h.sync();
    assert.equal(shared.indexed, 0);
    assert.ok(shared.aclUpdated >= 1, `grants rewritten: ${shared.aclUpdated}`);
    assert.deepEqual(await subjectsBySource(h.db.pool, h.connectionId), before);
  });

  test('erasing bob removes the files he owns or last modified and everything derived; files by others remain', async () => {
    const ids = await documentIds(h.db.pool, h.connectionId, his.map(sid));
    assert.equal(ids.length, 2);
    const had = await leftovers(h.db.pool, ids);
    assert.ok((had.chunks ?? 0) >= 2 && had.vaultBlobs === 2, JSON.stringify(had));
    assert.deepEqual(await codewordsInIndex(h, words), words, 'the probe sees his files before');
    const others = [...(await stored(h.db.pool, h.connectionId))].filter((id) => !his.map(sid).includes(id));

    const handle = await startErasure(starter, { workspaceId: h.workspaceId, subject: 'bob@ex.com', requestedBy: 'test:dpo', reason: 'DPO-DRIVE' });
    const result = await handle.result();
    assert.equal(result.erased.documents, 2);

    assert.deepEqual(await leftovers(h.db.pool, ids), { documents: 0, chunks: 0, vaultBlobs: 0, subjects: 0 });
    assert.deepEqual(await codewordsInIndex(h, words), []);
    for (const person of DRIVE_PEOPLE) {
      const can = await h.readable(person);
      for (const key of his) assert.ok(!can.has(sid(key)), `${person} cannot retrieve ${key}`);
    }
    assert.deepEqual([...(await stored(h.db.pool, h.connectionId))].sort(), others.sort(), 'files by other people remain');
    assert.ok((await h.readable('bob')).has(sid('daveDoc')), 'a file only shared with him is not his');
    assert.ok((await h.readable('alice')).has(sid('designDoc')));
  });

  test('later syncs do not bring his files back, even after he edits one', async () => {
    h.emulator.state.setContent(ITEM.bobNotes, buildText(`Bob notes, rewritten. Codeword ${CODEWORD.bobNotes}.`), email('bob'));
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    assert.equal(run.indexed, 0, 'his edited file is refused');
    const now = await stored(h.db.pool, h.connectionId);
    for (const key of his) assert.ok(!now.has(sid(key)), `${key} is not re-imported`);
    assert.deepEqual(await codewordsInIndex(h, words), []);
    assert.ok(now.has(sid('designDoc')) && now.has(sid('notesTxt')), 'others\' files are still synced');
  });
});
