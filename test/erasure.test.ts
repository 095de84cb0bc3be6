import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Queue } from 'bullmq';
import { AuditEntrySchema } from '../audit/entry.ts';
import { verifyAudit } from '../audit/verify.ts';
import { env } from '../core/env.ts';
import { OPENSSL_VERIFY, verifyAgainstChain, verifyBundle, writeBundle } from '../erasure/bundle.ts';
import { footprintDocumentIds } from '../erasure/footprint.ts';
import { openPersonal } from '../erasure/personal.ts';
import { eraseSubject, startErasure, type ErasureStarter } from '../erasure/request.ts';
import { bundleOf } from '../erasure/result.ts';
import { resolveSubject } from '../erasure/subject.ts';
import { CHANNEL, CODEWORD, FILE, FILE_CODEWORD, USER } from '../fixtures/slack/ids.ts';
import { redisConnection } from '../worker/queue.ts';
import { createErasureActivities } from '../workflows/erasure/activities.ts';
import type { ErasureResult } from '../workflows/erasure/types.ts';
import { workflowBundle } from '../workflows/worker.ts';
import { principalOfSourceUser } from './support/access.ts';
import { allDecryptedTexts, distinctiveMessages, nearestChunks, traces, vectorsOf } from './support/erasure-probe.ts';
import { startHarness, type SyncHarness } from './support/harness.ts';
import { startQueryStack, type QueryStack } from './support/query-stack.ts';

const run = promisify(execFile);

describe('erasing a person: provenance, shredding, suppression, a signed bundle', () => {
  let h: SyncHarness;
  let q: QueryStack;
  let dir: string;
  let native: NativeConnection;
  let worker: Worker;
  let running: Promise<void>;
  let starter: ErasureStarter;
  let bobId: number;
  let aliceId: number;
  let bobTexts: string[];
  let bobVectors: string[];
  let bobDocuments: string[];
  let first: ErasureResult;

  /** Every trace of bob's messages in the decrypted index, and in the nearest neighbours of his old vectors. */
  async function probe(): Promise<{ text: string[]; neighbours: string[] }> {
    const { blobs, chunks } = await allDecryptedTexts(h.db.pool, h.deps.keys);
    const text = traces([...blobs.values(), ...chunks.values()].join('\n'), [...bobTexts, FILE_CODEWORD.specPdf]);
    const neighbours = new Set<string>();
    for (const vector of bobVectors) {
      for (const id of await nearestChunks(h.db.pool, vector)) for (const t of traces(chunks.get(id) ?? '', bobTexts)) neighbours.add(t);
    }
    return { text, neighbours: [...neighbours] };
  }

  before(async () => {
    h = await startHarness();
    await h.sync();
    q = await startQueryStack(h);
    dir = await mkdtemp(join(tmpdir(), 'astry-erasure-'));
    const config = env();
    const taskQueue = `astry-erasure-test-${randomBytes(4).toString('hex')}`;
    native = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
    worker = await Worker.create({
      connection: native, namespace: config.TEMPORAL_NAMESPACE, taskQueue, workflowBundle: await workflowBundle(),
      activities: createErasureActivities({
        pool: h.db.pool, keys: h.deps.keys,
        erasure: { audit: q.deps.audit, signer: q.signer, askQueues: { connection: redisConnection(config.REDIS_URL), names: [q.queueName] } },
      }),
    });
    running = worker.run();
    starter = { pool: h.db.pool, keys: h.deps.keys, client: h.client, taskQueue };
    bobId = (await principalOfSourceUser(h.db.pool, h.connectionId, USER.bob)) ?? 0;
    aliceId = (await principalOfSourceUser(h.db.pool, h.connectionId, USER.alice)) ?? 0;
    bobTexts = distinctiveMessages(h.emulator.company, USER.bob);
  });
  after(async () => {
    worker?.shutdown();
    await running;
    await native?.close();
    await q?.close();
    await h?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('provenance: every document names the people it concerns, authors and mentioned', async () => {
    const { rows } = await h.db.pool.query<{ source_id: string; source_user_id: string; role: string; principal_id: number | null }>(
      `SELECT d.source_id, s.source_user_id, s.role, s.principal_id FROM documents d JOIN document_subjects s ON s.document_id = d.id`,
    );
    const has = (sourceId: (id: string) => boolean, user: string, role: string): boolean =>
      rows.some((r) => sourceId(r.source_id) && r.source_user_id === user && r.role === role);
    assert.ok(has((id) => id === `file:${FILE.specPdf}`, USER.bob, 'author'), 'a file names its uploader');
    assert.ok(has((id) => id.startsWith(`thread:${CHANNEL.engineering}:`), USER.gina, 'author'), 'a thread names each author');
    assert.ok(has((id) => id.startsWith(`day:${CHANNEL.engineering}:`), USER.bob, 'mentioned'), 'a mention is recorded');
    assert.ok(rows.filter((r) => r.source_user_id === USER.bob).every((r) => r.principal_id === bobId), 'resolved to the canonical user');
    const { rows: bare } = await h.db.pool.query(`SELECT id FROM documents d WHERE NOT EXISTS (SELECT 1 FROM document_subjects s WHERE s.document_id = d.id)`);
    assert.equal(bare.length, 0, 'no document without provenance');
  });

  test('a query\'s audit entry keeps who asked, the question hash and citations sealed under the asker\'s key', async () => {
    for (const email of ['bob@ex.com', 'alice@ex.com']) {
      const { status } = await q.ask(email, `When does the deploy freeze start? ${CODEWORD.engineering}`);
      assert.equal(status, 200);
    }
    await q.deps.audit.drain();
    const { rows } = await h.db.pool.query<{ entry: unknown }>(`SELECT entry FROM audit_log WHERE entry->>'type' = 'query' AND entry ? 'personal'`);
    assert.equal(rows.length, 2);
    const raw = JSON.stringify(rows);
    assert.ok(!raw.includes(`principal:${bobId}`) && !raw.includes('questionSha256'), 'nothing personal in clear');
    const actors = [];
    for (const row of rows) {
      const entry = AuditEntrySchema.parse(row.entry);
      assert.ok(entry.personal && entry.actor === `subject-key:${entry.personal.keyId}`);
      assert.ok((entry.documentIds ?? []).length > 0, 'document ids stay in clear');
      actors.push((await openPersonal(h.db.pool, h.deps.keys, h.workspaceId, entry.personal))?.actor);
    }
    assert.deepEqual(actors.sort(), [`principal:${aliceId}`, `principal:${bobId}`].sort());
  });

  test('erasing bob leaves no text, vector, blob, ledger row, job or readable audit field of his', async () => {
    bobDocuments = await footprintDocumentIds(h.db.pool, { workspaceId: h.workspaceId, principalId: bobId, pseudonym: '' });
    bobVectors = await vectorsOf(h.db.pool, bobDocuments);
    const before = await probe();
    assert.ok(bobTexts.length >= 5 && before.text.length >= bobTexts.length, `the probe sees bob before (${before.text.length}/${bobTexts.length})`);
    assert.ok(before.neighbours.length > 0, 'his vectors find his chunks before');

    const a = await startErasure(starter, { workspaceId: h.workspaceId, subject: 'bob@ex.com', requestedBy: 'test:dpo', reason: 'ticket DPO-1' }, { batchSize: 7 });
    const b = await startErasure(starter, { workspaceId: h.workspaceId, subject: `slack:${USER.bob}`, requestedBy: 'test:dpo' });
    assert.equal(a.joined, false);
    assert.equal(b.joined, true, 'a concurrent request for the same person joins the first');
    assert.equal(b.requestId, a.requestId);
    first = await a.result();
    assert.deepEqual(await b.result(), first);

    assert.equal(first.erased.documents, bobDocuments.length);
    assert.equal(first.erased.embeddings, bobVectors.length);
    assert.ok((first.erased.usageLedger ?? 0) >= 1 && (first.erased.auditEntriesShredded ?? 0) >= 1 && (first.erased.askJobs ?? 0) >= 1, JSON.stringify(first.erased));
    assert.equal(first.destroyedKeyIds.length, 1);
    assert.deepEqual(first.rescanConnections, [h.connectionId]);
    const { rows: cursors } = await h.db.pool.query<{ at: string }>(
      `SELECT cursor->>'fullScanAt' AS at FROM sync_cursors WHERE connection_id = $1 AND scope = $2`, [h.connectionId, `channel:${CHANNEL.engineering}`],
    );
    assert.equal(cursors[0]?.at, '1970-01-01T00:00:00.000Z', 'his channels are re-read in full by the next sync');

    const after = await probe();
    assert.deepEqual(after, { text: [], neighbours: [] }, 'no decrypted content and no nearest neighbour yields bob\'s messages');
    assert.deepEqual(await footprintDocumentIds(h.db.pool, { workspaceId: h.workspaceId, principalId: bobId, pseudonym: '' }), []);
    const { rows: ledger } = await h.db.pool.query(`SELECT 1 FROM usage_ledger WHERE principal_id = $1`, [bobId]);
    assert.equal(ledger.length, 0);
    const queue = new Queue(q.queueName, { connection: redisConnection(env().REDIS_URL) });
    const jobs = await queue.getJobs(['completed', 'failed']);
    await queue.close();
    assert.ok(jobs.every((j) => (j.data as { principalId?: number }).principalId !== bobId), 'no queued or finished job of bob');

    const { rows } = await h.db.pool.query<{ entry: unknown }>(`SELECT entry FROM audit_log WHERE entry->>'type' = 'query' AND entry ? 'personal'`);
    const opened = await Promise.all(rows.map(async (r) => {
      const e = AuditEntrySchema.parse(r.entry);
      return e.personal ? openPersonal(h.db.pool, h.deps.keys, h.workspaceId, e.personal) : undefined;
    }));
    assert.deepEqual(opened.map((o) => o?.actor ?? 'shredded').sort(), [`principal:${aliceId}`, 'shredded'].sort());
    const verified = await verifyAudit(h.db.pool, { publicKey: q.signer.publicKey, checkpointDir: q.checkpointDir });
    assert.equal(verified.ok, true, JSON.stringify(verified));
  });

  test('the bundle verifies with Astry and with openssl; one flipped byte in any file fails it', async () => {
    const bundle = join(dir, 'bundle');
    await writeBundle(bundle, bundleOf(first));
    const verdict = await verifyBundle(bundle, { publicKey: q.signer.publicKey });
    assert.ok(verdict.ok, JSON.stringify(verdict));
    const subject = await resolveSubject(h.db.pool, h.deps.keys, h.workspaceId, 'bob@ex.com');
    assert.equal(verdict.manifest.subject.pseudonym, `hmac-sha256:${subject.pseudonym}`);
    assert.deepEqual(verdict.manifest.erased, Object.fromEntries(Object.entries(first.erased).filter(([k]) => k !== 'suppressionRules')));
    assert.deepEqual(verdict.manifest.destroyedKeyIds, first.destroyedKeyIds);
    assert.ok(verdict.manifest.retained.some((r) => r.what.startsWith('audit entries')));
    assert.ok(!(await readFile(join(bundle, 'manifest.json'), 'utf8')).includes('bob'), 'the manifest names no one');
    assert.deepEqual(await verifyAgainstChain(h.db.pool, verdict.manifest, { publicKey: q.signer.publicKey, checkpointDir: q.checkpointDir }), { ok: true });

    const [command, ...args] = OPENSSL_VERIFY.split(' ');
    const openssl = await run(command ?? 'openssl', args, { cwd: bundle });
    assert.match(openssl.stdout, /Signature Verified Successfully/);

    for (const [file, opensslSees] of [['manifest.json', true], ['manifest.sig', true], ['pub.pem', false]] as const) {
      const path = join(bundle, file);
      const original = await readFile(path);
      const flipped = Buffer.from(original);
      const at = file === 'pub.pem' ? 40 : Math.floor(original.length / 2);
      flipped[at] = (flipped[at] ?? 0) ^ 0x01;
      await writeFile(path, flipped);
      const broken = await verifyBundle(bundle, { publicKey: q.signer.publicKey });
      assert.equal(broken.ok, false, `${file} with one flipped byte`);
      if (opensslSees) await assert.rejects(run(command ?? 'openssl', args, { cwd: bundle }), `openssl rejects a flipped ${file}`);
      await writeFile(path, original);
    }
    assert.ok((await verifyBundle(bundle, { publicKey: q.signer.publicKey })).ok);
  });

  test('a second request for the same person returns the first run\'s result', async () => {
    const again = await eraseSubject(starter, { workspaceId: h.workspaceId, subject: 'BOB@ex.com', requestedBy: 'test:someone-else' });
    assert.equal(again.joined, true);
    assert.deepEqual(again.result, first);
  });

  test('the next full sync does not bring bob back and rebuilds shared threads without him', async () => {
    h.deps.fullRescanHours = 0;
    const sync = await h.sync();
    assert.equal(sync.status, 'succeeded');
    assert.deepEqual(await probe(), { text: [], neighbours: [] });
    assert.deepEqual(await footprintDocumentIds(h.db.pool, { workspaceId: h.workspaceId, principalId: bobId, pseudonym: '' }), []);
    const { blobs } = await allDecryptedTexts(h.db.pool, h.deps.keys);
    const all = [...blobs.values()].join('\n');
    assert.ok(all.includes('noted, I will hold my merge until January'), 'others\' replies in bob\'s thread are back');
    assert.ok(all.includes('@[erased] the flaky test is in the billing suite'), 'a mention of bob is redacted');
    assert.ok(!all.includes('Bob Nguyen') && !all.includes('@bob'), 'bob is not named');
    const { rows } = await h.db.pool.query(`SELECT 1 FROM documents WHERE source_id = $1`, [`file:${FILE.specPdf}`]);
    assert.equal(rows.length, 0, 'bob\'s file is not re-imported');
  });
});
