import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CHANNEL, CODEWORD, FILE, FILE_CODEWORD, USER } from '../fixtures/slack/ids.ts';
import { readDocument } from '../pipeline/store.ts';
import { allDocuments, readableSourceIds } from './support/access.ts';
import { expectedSourceIds } from './support/oracle.ts';
import { startHarness, type SyncHarness } from './support/harness.ts';

/** Channels whose documents a user can read, derived from per-document grants. */
async function readableChannels(h: SyncHarness, user: string): Promise<Set<string>> {
  const docs = await allDocuments(h.db.pool, h.connectionId);
  const readable = await readableSourceIds(h.db.pool, h.connectionId, user);
  return new Set([...readable].flatMap((id) => (docs.get(id)?.kind === 'slack_file' ? [] : [docs.get(id)?.container ?? ''])));
}

async function decryptedTexts(h: SyncHarness): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  for (const [sourceId, doc] of await allDocuments(h.db.pool, h.connectionId)) {
    const { title, text } = await readDocument(h.db.pool, h.deps.keys, doc.id);
    texts.set(sourceId, `${title}\n${text}`);
  }
  return texts;
}

describe('Slack sync into the vault and pgvector', () => {
  let h: SyncHarness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  test('a full sync indexes every visible channel, thread, day and file, and no DM', async () => {
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    assert.equal(run.errors, 0);
    const docs = await allDocuments(h.db.pool, h.connectionId);
    const containers = new Set([...docs.values()].map((d) => d.container));
    const indexed = [CHANNEL.general, CHANNEL.engineering, CHANNEL.privatePlans, CHANNEL.sharedAcme, CHANNEL.oldProject, CHANNEL.wasPublic];
    for (const channel of indexed) assert.ok(containers.has(channel), `${channel} indexed`);
    for (const never of [CHANNEL.secretNoBot, CHANNEL.dmAliceBob, CHANNEL.mpim]) assert.ok(!containers.has(never), `${never} never indexed`);

    assert.deepEqual(new Set(docs.keys()), expectedSourceIds(h.emulator.company));

    const texts = await decryptedTexts(h);
    const all = [...texts.values()].join('\n');
    for (const secret of [CODEWORD.dmAliceBob, CODEWORD.mpim, CODEWORD.secretNoBot, FILE_CODEWORD.dmTxt, FILE_CODEWORD.secretTxt]) {
      assert.ok(!all.includes(secret), `${secret} must never be indexed`);
    }
    for (const word of [FILE_CODEWORD.specPdf, FILE_CODEWORD.planDocx, FILE_CODEWORD.statusHtml, FILE_CODEWORD.runbookMd, FILE_CODEWORD.welcomeTxt]) {
      assert.ok(all.includes(word), `file content ${word} extracted`);
    }
    const { rows } = await h.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM chunks`);
    assert.ok(Number(rows[0]?.n) >= docs.size, 'every document has chunks with embeddings');
  });

  test('every seeded user reads exactly the channels SOURCES.md cases 1-7 grant them', async () => {
    const { expected, users } = h.emulator.company;
    for (const user of users.filter((u) => !u.is_bot && u.id !== USER.slackbot)) {
      const readable = await readableChannels(h, user.id);
      for (const [channel, readers] of Object.entries(expected.channels)) {
        assert.equal(readable.has(channel), readers.includes(user.id), `${user.name} reading ${channel}`);
      }
    }
    // The named cases, spelled out.
    assert.deepEqual([...(await readableChannels(h, USER.dave))], [], 'case 4: deactivated dave reads nothing');
    assert.deepEqual([...(await readableChannels(h, USER.sam))], [CHANNEL.engineering], 'single-channel guest');
    assert.ok((await readableChannels(h, USER.xena)).has(CHANNEL.sharedAcme), 'case 3: Slack Connect external');
    assert.ok(!(await readableChannels(h, USER.gina)).has(CHANNEL.general), 'case 1: guests only where members');
    assert.ok(!(await readableChannels(h, USER.alice)).has(CHANNEL.wasPublic), 'case 5: turned private -> members only');
  });

  test('a file shared into a private channel and #general is readable by the union (case 6)', async () => {
    for (const [file, readers] of Object.entries(h.emulator.company.expected.files)) {
      for (const user of [USER.alice, USER.bob, USER.gina, USER.sam, USER.xena, USER.dave]) {
        const can = (await readableSourceIds(h.db.pool, h.connectionId, user)).has(`file:${file}`);
        assert.equal(can, readers.includes(user), `${user} reading ${file}`);
      }
    }
    assert.ok((await readableSourceIds(h.db.pool, h.connectionId, USER.gina)).has(`file:${FILE.roadmapPdf}`));
    assert.ok((await readableSourceIds(h.db.pool, h.connectionId, USER.bob)).has(`file:${FILE.roadmapPdf}`));
  });

  test('a second run with no changes re-embeds nothing', async () => {
    const run = await h.sync();
    assert.equal(run.indexed, 0);
    assert.equal(run.chunks, 0);
    assert.equal(run.errors, 0);
  });

  test('a new reply on an old thread, a new message and a new file are picked up incrementally', async () => {
    const messages = h.emulator.company.messages[CHANNEL.engineering] ?? [];
    const oldThread = messages.find((m) => (m.reply_count ?? 0) > 0);
    assert.ok(oldThread, 'seeded thread');
    h.emulator.postMessage(CHANNEL.engineering, USER.bob, 'late reply mentioning QUOKKA-REPLY', { threadTs: oldThread.ts });
    h.emulator.postMessage(CHANNEL.general, USER.alice, 'brand new message NUMBAT-NEW');
    h.emulator.uploadFile([CHANNEL.engineering], USER.alice, { name: 'notes.txt', mimetype: 'text/plain', content: Buffer.from('new file WALLABY-FILE') });
    h.emulator.resetRequests();
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    assert.ok(run.indexed >= 3 && run.indexed <= 6, `only changed documents re-indexed (got ${run.indexed})`);
    const texts = [...(await decryptedTexts(h)).values()].join('\n');
    for (const word of ['QUOKKA-REPLY', 'NUMBAT-NEW', 'WALLABY-FILE']) assert.ok(texts.includes(word), word);
    const thread = await readableSourceIds(h.db.pool, h.connectionId, USER.sam);
    assert.ok(thread.has(`thread:${CHANNEL.engineering}:${oldThread.ts}`));
    // Incremental: history was read from the cursor's window, not from the beginning.
    const history = h.emulator.calls('conversations.history').filter((c) => c.params.channel === CHANNEL.general);
    assert.ok(history.every((c) => c.params.oldest !== undefined), 'history read with oldest');
  });

  test('removing gina from the private channel revokes its whole history after the next run (case 2)', async () => {
    const before = await readableChannels(h, USER.gina);
    assert.ok(before.has(CHANNEL.privatePlans));
    h.emulator.removeMember(CHANNEL.privatePlans, USER.gina);
    const run = await h.sync();
    assert.equal(run.indexed, 0, 'revocation needs no re-embedding');
    assert.ok(!(await readableChannels(h, USER.gina)).has(CHANNEL.privatePlans));
    assert.ok((await readableChannels(h, USER.alice)).has(CHANNEL.privatePlans));
  });

  test('a channel turned private changes grants without re-embedding (case 5)', async () => {
    const { rows: before } = await h.db.pool.query<{ id: string; embedding: string }>(
      `SELECT c.id, c.embedding::text FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.container_id = $1 ORDER BY c.id`,
      [CHANNEL.engineering],
    );
    h.emulator.setPrivate(CHANNEL.engineering);
    const run = await h.sync();
    assert.equal(run.indexed, 0);
    assert.ok(run.aclUpdated > 0);
    const { rows: afterRows } = await h.db.pool.query<{ id: string; embedding: string }>(
      `SELECT c.id, c.embedding::text FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.container_id = $1 ORDER BY c.id`,
      [CHANNEL.engineering],
    );
    assert.deepEqual(afterRows, before, 'same chunk rows and vectors');
    const engineeringMembers = new Set(h.emulator.company.channels.find((c) => c.id === CHANNEL.engineering)?.members);
    const full = h.emulator.company.users.find((u) => !u.is_bot && !u.deleted && !u.is_restricted && u.team_id === h.emulator.company.team.id && !engineeringMembers.has(u.id) && u.id !== USER.slackbot);
    if (full) assert.ok(!(await readableChannels(h, full.id)).has(CHANNEL.engineering), 'non-members lose access');
  });

  test('a file unshared from #general is readable only by the private channel (case 6)', async () => {
    const version = async () =>
      (await h.db.pool.query<{ version: number }>(`SELECT version FROM documents WHERE source_id = $1`, [`file:${FILE.roadmapPdf}`])).rows[0]?.version;
    const before = await version();
    h.emulator.unshareFile(FILE.roadmapPdf, CHANNEL.general);
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    assert.equal(await version(), before, 'ACL-only: the file is not downloaded or embedded again');
    assert.ok(!(await readableSourceIds(h.db.pool, h.connectionId, USER.bob)).has(`file:${FILE.roadmapPdf}`));
    assert.ok((await readableSourceIds(h.db.pool, h.connectionId, USER.alice)).has(`file:${FILE.roadmapPdf}`));
  });

  test('a channel the bot is removed from loses all its documents, vectors and blobs', async () => {
    h.emulator.removeMember(CHANNEL.sharedAcme, USER.astry);
    const run = await h.sync();
    assert.ok(run.deleted > 0);
    const { rows } = await h.db.pool.query<{ docs: string; blobs: string; chunks: string }>(
      `SELECT (SELECT count(*) FROM documents WHERE container_id = $1) AS docs,
              (SELECT count(*) FROM vault_blobs b LEFT JOIN documents d ON d.id = b.document_id WHERE d.id IS NULL) AS blobs,
              (SELECT count(*) FROM chunks c LEFT JOIN documents d ON d.id = c.document_id WHERE d.id IS NULL) AS chunks`,
      [CHANNEL.sharedAcme],
    );
    assert.deepEqual(rows[0], { docs: '0', blobs: '0', chunks: '0' });
  });
});
