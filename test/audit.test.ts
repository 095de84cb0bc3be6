import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { chainHash } from '../audit/chain.ts';
import { checkpointPayload, LocalEd25519Signer } from '../audit/checkpoint.ts';
import { AuditLog } from '../audit/log.ts';
import { verifyAudit, type VerifyResult } from '../audit/verify.ts';
import type { Queryable } from '../db/pool.ts';
import { endAppPools, freshDatabase, type TestDatabase } from './support/database.ts';

const ENTRIES = 45;

describe('audit trail', () => {
  let db: TestDatabase;
  let dir: string;
  let checkpointDir: string;
  let signer: LocalEd25519Signer;
  let owner: pg.Pool;
  let app: pg.Pool;
  let second: pg.Pool;
  const logs: AuditLog[] = [];
  const warnings: string[] = [];

  before(async () => {
    db = await freshDatabase();
    dir = await mkdtemp(join(tmpdir(), 'astry-audit-'));
    checkpointDir = join(dir, 'checkpoints');
    signer = await LocalEd25519Signer.open(join(dir, 'keys', 'audit.pem'));
    owner = new pg.Pool({ connectionString: db.ownerUrl, max: 2 });
    app = new pg.Pool({ connectionString: db.url, max: 8 });
    // Two logs on two pools stand for two worker processes appending to one chain at once.
    second = new pg.Pool({ connectionString: db.url, max: 4 });
    for (const [i, pool] of [app, second].entries()) {
      const onWarning = (m: string): number => warnings.push(m);
      logs.push(new AuditLog({ pool, spoolDir: join(dir, `spool-${i}`), checkpointDir, signer, checkpointEvery: 10, onWarning }));
    }
    await Promise.all(
      Array.from({ length: ENTRIES }, (_, n) =>
        logs[n % 2]?.append({
          workspaceId: String(1 + (n % 3)),
          type: 'query',
          actor: `user-${n % 5}`,
          documentIds: [String(n), String(n + 1)],
          model: 'extractive/v1',
          costUsd: n / 1000,
          outcome: n % 7 === 0 ? 'refused' : 'answered',
          details: { n, nested: { list: [1, 'two', null, true] } },
        }),
      ),
    );
    // Appends that outran insertTimeoutMs on a loaded machine wait in the spool: settle them first.
    for (const log of logs) await log.drain();
    await logs[0]?.checkpoint();
  });

  after(async () => {
    for (const log of logs) await log.close();
    await endAppPools(owner, [app, second]);
    await owner.end();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const verify = (db: Queryable, withFiles = true): Promise<VerifyResult> =>
    verifyAudit(db, { publicKey: signer.publicKeyPem, ...(withFiles ? { checkpointDir } : {}) });

  /** Tampers as the schema owner with the triggers disabled, verifies inside that transaction, rolls it all back. */
  async function tampered(tamper: (owner: pg.PoolClient) => Promise<unknown>, withFiles = true): Promise<VerifyResult> {
    const client = await owner.connect();
    try {
      await client.query('BEGIN');
      await client.query('ALTER TABLE audit_log DISABLE TRIGGER USER');
      await client.query('ALTER TABLE audit_checkpoints DISABLE TRIGGER USER');
      await tamper(client);
      return await verify(client, withFiles);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  }

  function assertBrokenAt(result: VerifyResult, seq: number, reason: RegExp): void {
    assert.equal(result.ok, false, JSON.stringify(result));
    if (!result.ok) {
      assert.equal(result.firstBrokenSeq, seq, result.reason);
      assert.match(result.reason, reason);
    }
  }

  test('concurrent appenders build one gap-free chain that verifies with its checkpoints', async () => {
    const { rows } = await app.query<{ n: string; max: string; ids: string }>(
      `SELECT count(*) AS n, max(seq) AS max, count(DISTINCT event_id) AS ids FROM audit_log`,
    );
    assert.deepEqual(rows[0], { n: String(ENTRIES), max: String(ENTRIES), ids: String(ENTRIES) });
    const files = (await readdir(checkpointDir)).filter((f) => f.endsWith('.json'));
    assert.deepEqual(files.map((f) => Number(f.slice(0, 20))).sort((a, b) => a - b), [10, 20, 30, 40, 45]);
    assert.deepEqual(await verify(app), { ok: true, entries: ENTRIES, checkpoints: 5 }, 'five checkpoints, each a row and a file');
    // Spooling (an insert that outran its timeout on a loaded machine) is allowed; nothing else is.
    assert.deepEqual(warnings.filter((w) => !w.endsWith('spooling')), []);
  });

  test('a modified entry is reported at its seq', async () => {
    const result = await tampered((c) => c.query(`UPDATE audit_log SET entry = jsonb_set(entry, '{outcome}', '"answered-ok"') WHERE seq = 17`));
    assertBrokenAt(result, 17, /modified/);
  });

  test('a modified entry whose hash was recomputed breaks the link to the next one', async () => {
    const result = await tampered(async (c) => {
      const { rows } = await c.query<{ entry: Record<string, unknown>; prev_hash: Buffer }>(`SELECT entry, prev_hash FROM audit_log WHERE seq = 17`);
      const entry = { ...rows[0]?.entry, documentIds: [] };
      await c.query(`UPDATE audit_log SET entry = $1, hash = $2 WHERE seq = 17`, [entry, chainHash(rows[0]?.prev_hash ?? Buffer.alloc(32), 17, entry)]);
    });
    assertBrokenAt(result, 18, /does not link/);
  });

  test('a changed workspace_id column is caught even though the entry is intact', async () => {
    const result = await tampered((c) => c.query(`UPDATE audit_log SET workspace_id = '99' WHERE seq = 12`));
    assertBrokenAt(result, 12, /columns differ/);
  });

  test('a deleted entry is reported at its seq', async () => {
    assertBrokenAt(await tampered((c) => c.query(`DELETE FROM audit_log WHERE seq = 23`)), 23, /missing/);
    assertBrokenAt(await tampered((c) => c.query(`DELETE FROM audit_log WHERE seq = 1`)), 1, /missing/);
  });

  test('two swapped entries are reported at the first of them', async () => {
    const result = await tampered(async (c) => {
      await c.query(`UPDATE audit_log SET seq = 1000 WHERE seq = 5`);
      await c.query(`UPDATE audit_log SET seq = 5 WHERE seq = 6`);
      await c.query(`UPDATE audit_log SET seq = 6 WHERE seq = 1000`);
    });
    assertBrokenAt(result, 5, /does not link/);
  });

  test('a truncated tail is caught by the checkpoints, outside the database even when removed inside it', async () => {
    assertBrokenAt(await tampered((c) => c.query(`DELETE FROM audit_log WHERE seq > 33`), false), 34, /removed from the tail/);
    const deleteBoth = async (c: pg.PoolClient): Promise<void> => {
      await c.query(`DELETE FROM audit_log WHERE seq > 33`);
      await c.query(`DELETE FROM audit_checkpoints WHERE seq > 33`);
    };
    assertBrokenAt(await tampered(deleteBoth), 34, /checkpoint file .* covers seq 4[05] but the log ends at 33/);
    // Without the files nothing is left to compare: why they must live outside the database.
    assert.deepEqual(await tampered(deleteBoth, false), { ok: true, entries: 33, checkpoints: 3 });
    assertBrokenAt(await tampered((c) => c.query(`TRUNCATE audit_log`)), 1, /removed from the tail/);
  });

  test('a tail rewritten into a consistent chain is caught by the signed checkpoint after it', async () => {
    const result = await tampered(async (c) => {
      const { rows } = await c.query<{ seq: string; entry: Record<string, unknown>; prev_hash: Buffer }>(
        `SELECT seq, entry, prev_hash FROM audit_log WHERE seq >= 38 ORDER BY seq`,
      );
      let prev = rows[0]?.prev_hash ?? Buffer.alloc(32);
      for (const row of rows) {
        const entry = Number(row.seq) === 38 ? { ...row.entry, outcome: 'answered-ok' } : row.entry;
        const hash = chainHash(prev, Number(row.seq), entry);
        await c.query(`UPDATE audit_log SET entry = $2, prev_hash = $3, hash = $4 WHERE seq = $1`, [row.seq, entry, prev, hash]);
        prev = hash;
      }
      await c.query(`DELETE FROM audit_checkpoints WHERE seq > 30`);
    });
    assertBrokenAt(result, 31, /signed a different hash for entry 40: entries after 30 were rewritten/);
  });

  test('an altered or foreign checkpoint signature is detected', async () => {
    const file = join(checkpointDir, (await readdir(checkpointDir)).filter((f) => f.startsWith(String(20).padStart(20, '0')))[0] ?? '');
    const original = await readFile(file, 'utf8');
    const checkpoint = JSON.parse(original) as { signature: string };
    const bytes = Buffer.from(checkpoint.signature, 'base64');
    bytes[0] = (bytes[0] ?? 0) ^ 1;
    await writeFile(file, JSON.stringify({ ...checkpoint, signature: bytes.toString('base64') }));
    try {
      assertBrokenAt(await verify(app), 20, /invalid signature/);
    } finally {
      await writeFile(file, original);
    }
    assert.equal((await verify(app)).ok, true);

    const mallory = await LocalEd25519Signer.open(join(dir, 'mallory', 'key.pem'));
    const result = await tampered(async (c) => {
      const { rows } = await c.query<{ hash: Buffer }>(`SELECT hash FROM audit_log WHERE seq = 30`);
      const forged = { seq: 30, hash: rows[0]?.hash.toString('hex') ?? '', at: new Date().toISOString(), keyId: mallory.keyId };
      await c.query(`INSERT INTO audit_checkpoints (seq, hash, signature, key_id, at) VALUES ($1, $2, $3, $4, $5)`, [
        30, rows[0]?.hash, await mallory.sign(checkpointPayload(forged)), mallory.keyId, forged.at,
      ]);
    });
    assertBrokenAt(result, 30, /invalid signature \(or another key/);
    assertBrokenAt(await tampered((c) => c.query(`UPDATE audit_checkpoints SET at = at + interval '1 second' WHERE seq = 10`)), 10, /invalid signature/);
  });

  test('the application role may not update, delete or truncate the audit tables, nor disable their triggers', async () => {
    for (const table of ['audit_log', 'audit_checkpoints']) {
      for (const sql of [`UPDATE ${table} SET seq = seq WHERE seq = 10`, `DELETE FROM ${table} WHERE seq = 10`, `TRUNCATE ${table}`, `ALTER TABLE ${table} DISABLE TRIGGER USER`]) {
        await assert.rejects(app.query(sql), (err: Error & { code?: string }) => err.code === '42501', sql);
      }
    }
    assert.equal((await verify(app)).ok, true);
  });

  test('the triggers stop even the owner who has not disabled them', async () => {
    for (const table of ['audit_log', 'audit_checkpoints']) {
      for (const sql of [`UPDATE ${table} SET seq = seq WHERE seq = 10`, `DELETE FROM ${table} WHERE seq = 10`, `TRUNCATE ${table}`]) {
        await assert.rejects(owner.query(sql), /append-only/, sql);
      }
    }
  });

  test('the signing key is created 0600, reopened as the same key, and refused once others may read it', async () => {
    const path = join(dir, 'keys', 'audit.pem');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await LocalEd25519Signer.open(path)).keyId, signer.keyId);
    await chmod(path, 0o644);
    await assert.rejects(LocalEd25519Signer.open(path), (err: Error & { code?: string }) => err.code === 'CONFIG_INVALID');
    await chmod(path, 0o600);
  });

  test('an invalid event is refused at once and nothing is recorded', async () => {
    await assert.rejects(logs[0]?.append({ workspaceId: '1', type: 'query', actor: 'u', outcome: 'x', costUsd: Infinity }) ?? Promise.resolve());
    await assert.rejects(logs[0]?.append({ workspaceId: '1', type: 'query', actor: 'u', outcome: 'x', details: { when: new Date() } }) ?? Promise.resolve());
    const { rows } = await app.query<{ n: string }>(`SELECT count(*) AS n FROM audit_log`);
    assert.equal(rows[0]?.n, String(ENTRIES));
  });
});
