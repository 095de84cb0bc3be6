import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAstryError, type AstryErrorCode } from '../core/errors.ts';
import { connectionToken } from '../db/connections.ts';
import { openPersonal, personalAuditFields } from '../erasure/personal.ts';
import { pseudonymKey } from '../erasure/pseudonym.ts';
import { CHANNEL, USER } from '../fixtures/slack/ids.ts';
import { readDocument } from '../pipeline/store.ts';
import { Conversations } from '../slackbot/conversation.ts';
import { archivedKeyPath, LocalKeyFileProvider, type KeyProvider } from '../vault/key-provider.ts';
import { listKeks, retireKek, rotateKek } from '../vault/kek-rotation.ts';
import { keyUsage, WRAPPED_KEY_TABLES } from '../vault/rewrap.ts';
import { startHarness, type SyncHarness } from './support/harness.ts';
import { runAstry } from './support/spawn.ts';

const rejectsWith = (code: AstryErrorCode, message?: RegExp) => (err: unknown) => isAstryError(err, code) && (message === undefined || message.test(err.message));

describe('KEK rotation: a new key wraps, every data key is re-wrapped, old keys retire', () => {
  let h: SyncHarness;
  let dir: string;
  let conversations: Conversations;
  let sealedFields: Awaited<ReturnType<typeof personalAuditFields>>;
  /** What every encrypted thing reads as before any rotation. */
  const plain = { documents: new Map<string, string>(), secret: '', pseudonym: Buffer.alloc(0), turn: '' };
  const keyFile = () => h.kekFile;

  /** Reads every encrypted thing through `keys` and checks it is what it was. */
  async function assertAllReadable(keys: KeyProvider, why: string): Promise<void> {
    for (const [id, text] of plain.documents) assert.equal((await readDocument(h.db.pool, keys, id)).text, text, `${why}: document ${id}`);
    assert.equal(await connectionToken(h.db.pool, keys, h.connectionId), plain.secret, `${why}: connection secret`);
    assert.deepEqual(await pseudonymKey(h.db.pool, keys, h.workspaceId), plain.pseudonym, `${why}: pseudonym key`);
    assert.ok(sealedFields.personal);
    assert.deepEqual(await openPersonal(h.db.pool, keys, h.workspaceId, sealedFields.personal), { reason: 'kek-rotation-test' }, `${why}: subject key`);
    const turns = await new Conversations({ pool: h.db.pool, keys, workspaceId: h.workspaceId, connectionId: h.connectionId }).recent(CHANNEL.general, '1700000000.000100');
    assert.equal(turns[0]?.question, plain.turn, `${why}: slack turn`);
  }

  const activeId = async () => (await LocalKeyFileProvider.list(keyFile())).find((k) => k.active)?.keyId ?? '';

  /** Wrapped keys per KEK id, summed over the tables. */
  async function perKey(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [id, byTable] of await keyUsage(h.db.pool)) out.set(id, [...byTable.values()].reduce((a, b) => a + b, 0));
    return out;
  }

  const astry = (args: string[]): Promise<{ code: number | null; out: string }> => runAstry(h, dir, args);

  before(async () => {
    h = await startHarness();
    dir = await mkdtemp(join(tmpdir(), 'astry-kek-rotation-'));
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    // One row in every table that holds wrapped keys.
    const { rows } = await h.db.pool.query<{ id: string }>(`SELECT id::text FROM documents ORDER BY id`);
    for (const { id } of rows) plain.documents.set(id, (await readDocument(h.db.pool, h.deps.keys, id)).text);
    plain.secret = await connectionToken(h.db.pool, h.deps.keys, h.connectionId);
    plain.pseudonym = Buffer.from(await pseudonymKey(h.db.pool, h.deps.keys, h.workspaceId));
    const { rows: people } = await h.db.pool.query<{ principal_id: number }>(`SELECT principal_id FROM source_identities WHERE connection_id = $1 AND source_user_id = $2`, [h.connectionId, USER.alice]);
    assert.ok(people[0]);
    sealedFields = await personalAuditFields(h.db.pool, h.deps.keys, h.workspaceId, people[0].principal_id, { reason: 'kek-rotation-test' });
    conversations = new Conversations({ pool: h.db.pool, keys: h.deps.keys, workspaceId: h.workspaceId, connectionId: h.connectionId });
    plain.turn = 'what did we decide about pricing?';
    await conversations.append(CHANNEL.general, '1700000000.000100', people[0].principal_id, randomUUID(), { question: plain.turn, answer: 'nothing yet', mode: 'model' });
    const usage = await keyUsage(h.db.pool);
    assert.equal(usage.size, 1, 'everything is under the first key');
    assert.deepEqual([...(usage.get(await activeId())?.keys() ?? [])].sort(), WRAPPED_KEY_TABLES.map((t) => t.table).sort(), 'every table holds a wrapped key');
    assert.ok(plain.documents.size > 10);
  });

  after(async () => {
    await h?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a rotation stopped halfway leaves every row readable, refuses a new rotation and the old key\'s retirement, and resumes', async () => {
    const first = await activeId();
    const total = [...(await perKey()).values()].reduce((a, b) => a + b, 0);
    const stopped = await rotateKek(h.db.pool, keyFile(), { batchSize: 2, maxBatches: 3 });
    assert.equal(stopped.previous, first);
    assert.ok(stopped.created && stopped.created !== first);
    const second = stopped.created;
    assert.equal(stopped.report.stopped, true);
    assert.equal(stopped.report.target, second);
    // Three batches of at most two rows (the one connection is a batch of its own).
    const moved = stopped.report.tables.reduce((s, t) => s + t.rewrapped, 0);
    assert.equal(moved, 5);
    assert.deepEqual(await perKey(), new Map([[first, total - moved], [second, moved]]));

    // Halfway: the running worker's provider (opened before the rotation) and a fresh one read both generations.
    await assertAllReadable(h.deps.keys, 'halfway, running provider');
    await assertAllReadable(await LocalKeyFileProvider.open(keyFile()), 'halfway, fresh provider');

    await assert.rejects(rotateKek(h.db.pool, keyFile()), rejectsWith('CONFLICT', /--resume/), 'no second generation while the first is unfinished');
    await assert.rejects(retireKek(h.db.pool, keyFile(), first), rejectsWith('CONFLICT', /still wraps data keys \(.*documents: \d+/));
    await assert.rejects(retireKek(h.db.pool, keyFile(), second), rejectsWith('CONFLICT', /is the active key/));
    // One rotation at a time.
    const [a, b] = await Promise.allSettled([rotateKek(h.db.pool, keyFile(), { resume: true, batchSize: 1 }), rotateKek(h.db.pool, keyFile(), { resume: true, batchSize: 1 })]);
    const refused = [a, b].filter((r) => r.status === 'rejected');
    assert.equal(refused.length, 1, 'the second concurrent pass is refused');
    assert.ok(refused[0]?.status === 'rejected' && isAstryError(refused[0].reason, 'CONFLICT'));
    const resumed = [a, b].find((r) => r.status === 'fulfilled');
    assert.ok(resumed?.status === 'fulfilled');
    assert.equal(resumed.value.created, null, 'resume creates no key');
    assert.equal(resumed.value.report.tables.reduce((s, t) => s + t.rewrapped, 0), total - moved, 'rows already under the new key were skipped');
    assert.equal(resumed.value.report.tables.reduce((s, t) => s + t.alreadyCurrent, 0), moved);
    assert.ok(resumed.value.report.tables.every((t) => t.remaining === 0 && t.failed === 0));

    assert.deepEqual(await perKey(), new Map([[second, total]]), 'every row is under the new key');
    await assertAllReadable(h.deps.keys, 'after, running provider');
    await assertAllReadable(await LocalKeyFileProvider.open(keyFile()), 'after, fresh provider');
    const again = await rotateKek(h.db.pool, keyFile(), { resume: true });
    assert.equal(again.report.tables.reduce((s, t) => s + t.rewrapped, 0), 0, 'idempotent');
  });

  test('after the rotation a sync still works and wraps new keys under the new KEK; the old key retires and everything still decrypts', async () => {
    const [active] = (await listKeks(h.db.pool, keyFile())).filter((k) => k.active);
    assert.ok(active);
    const old = (await listKeks(h.db.pool, keyFile())).filter((k) => !k.active);
    assert.equal(old.length, 1);
    assert.deepEqual(old[0]?.rows, {}, 'the old key wraps nothing');

    h.emulator.postMessage(CHANNEL.general, USER.alice, 'after the KEK rotation: WOMBAT-ROTATED');
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    assert.ok(run.indexed >= 1, 'something new was stored');
    assert.deepEqual([...(await perKey()).keys()], [active.keyId], 'the worker wrapped new document keys under the new KEK');

    const oldId = old[0]?.keyId ?? '';
    assert.equal(await retireKek(h.db.pool, keyFile(), oldId), archivedKeyPath(keyFile(), oldId));
    await assert.rejects(access(archivedKeyPath(keyFile(), oldId)));
    await assert.rejects(retireKek(h.db.pool, keyFile(), oldId), rejectsWith('NOT_FOUND'));
    await assertAllReadable(await LocalKeyFileProvider.open(keyFile()), 'old key retired, fresh provider');
    await assertAllReadable(h.deps.keys, 'old key retired, running provider');
    const second = await h.sync();
    assert.equal(second.status, 'succeeded');
  });

  test('astry keys rotate | list | retire from the CLI, stopped and resumed, and audited', async () => {
    const [before] = (await listKeks(h.db.pool, keyFile())).filter((k) => k.active);
    assert.ok(before);
    const stopped = await astry(['keys', 'rotate', '--batch-size', '3', '--max-batches', '2']);
    assert.equal(stopped.code, 0, stopped.out);
    const created = /new key (local:[0-9a-f]{16}) is active \(was (local:[0-9a-f]{16})\)/.exec(stopped.out);
    assert.ok(created, stopped.out);
    assert.equal(created[2], before.keyId);
    const next = created[1] ?? '';
    assert.match(stopped.out, /not under local:[0-9a-f]{16} yet \(stopped by --max-batches\): run astry keys rotate --resume/);

    const refused = await astry(['keys', 'rotate']);
    assert.equal(refused.code, 1);
    assert.match(refused.out, /earlier rotation stopped.*\(CONFLICT\)/);
    const early = await astry(['keys', 'retire', before.keyId]);
    assert.equal(early.code, 1);
    assert.match(early.out, /still wraps data keys/);

    const listed = await astry(['keys', 'list']);
    assert.equal(listed.code, 0, listed.out);
    assert.match(listed.out, new RegExp(`${next}.*active`));
    assert.match(listed.out, new RegExp(`${before.keyId}.*old \\(unwrap only\\)`));

    const resumed = await astry(['keys', 'rotate', '--resume']);
    assert.equal(resumed.code, 0, resumed.out);
    assert.match(resumed.out, new RegExp(`every wrapped key is under ${next}`));
    assert.deepEqual([...(await perKey()).keys()], [next]);

    const retired = await astry(['keys', 'retire', before.keyId]);
    assert.equal(retired.code, 0, retired.out);
    assert.match(retired.out, new RegExp(`retired ${before.keyId}: deleted .*kek\\.key\\.${before.keyId.slice(6)}`));
    assert.equal((await astry(['keys', 'retire', next])).code, 1, 'the active key is never retired');
    await assertAllReadable(await LocalKeyFileProvider.open(keyFile()), 'after the CLI rotation');

    const { rows } = await h.db.pool.query<{ action: string }>(`SELECT entry->'details'->>'action' AS action FROM audit_log WHERE entry->'details'->>'via' = 'cli' ORDER BY seq`);
    assert.deepEqual(rows.map((r) => r.action), ['kek.rotate', 'kek.rotate.resume', 'kek.retire']);
  });
});
