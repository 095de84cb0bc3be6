import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readDocument } from '../pipeline/store.ts';
import { startHarness, type SyncHarness } from './support/harness.ts';

/** Tampering with sealed rows in Postgres must make decryption fail, never return other plaintext. */
describe('vault rows at rest', () => {
  let h: SyncHarness;
  let docA: string;
  let docB: string;
  before(async () => {
    h = await startHarness();
    await h.sync();
    const { rows } = await h.db.pool.query<{ id: string }>(`SELECT document_id AS id FROM vault_blobs ORDER BY document_id LIMIT 2`);
    docA = rows[0]?.id ?? '';
    docB = rows[1]?.id ?? '';
  });
  after(async () => {
    await h.close();
  });

  async function expectDecryptFailure(documentId: string): Promise<void> {
    await assert.rejects(readDocument(h.db.pool, h.deps.keys, documentId), (err: Error & { code?: string }) => err.code === 'DECRYPT_FAILED');
  }

  test('an intact blob decrypts', async () => {
    const { text } = await readDocument(h.db.pool, h.deps.keys, docA);
    assert.ok(text.length > 0);
  });

  test('a flipped ciphertext byte fails to decrypt', async () => {
    await h.db.pool.query(`UPDATE vault_blobs SET sealed = set_byte(sealed, length(sealed) - 1, get_byte(sealed, length(sealed) - 1) # 1) WHERE document_id = $1`, [docA]);
    await expectDecryptFailure(docA);
    await h.db.pool.query(`UPDATE vault_blobs SET sealed = set_byte(sealed, length(sealed) - 1, get_byte(sealed, length(sealed) - 1) # 1) WHERE document_id = $1`, [docA]);
    await readDocument(h.db.pool, h.deps.keys, docA);
  });

  test('a short tag fails to decrypt', async () => {
    const { rows } = await h.db.pool.query<{ sealed: Buffer }>(`SELECT sealed FROM vault_blobs WHERE document_id = $1`, [docA]);
    const original = rows[0]?.sealed;
    assert.ok(original);
    // Layout: version(1) | iv(12) | tag(16) | ciphertext. Drop the tag's last 4 bytes.
    const short = Buffer.concat([original.subarray(0, 1 + 12 + 12), original.subarray(1 + 12 + 16)]);
    await h.db.pool.query(`UPDATE vault_blobs SET sealed = $2 WHERE document_id = $1`, [docA, short]);
    await expectDecryptFailure(docA);
    await h.db.pool.query(`UPDATE vault_blobs SET sealed = $2 WHERE document_id = $1`, [docA, original]);
  });

  test('a blob moved to another document fails to decrypt, even with that document key moved too', async () => {
    await h.db.pool.query(
      `UPDATE vault_blobs SET sealed = (SELECT sealed FROM vault_blobs WHERE document_id = $1) WHERE document_id = $2`,
      [docA, docB],
    );
    await expectDecryptFailure(docB);
    await h.db.pool.query(
      `UPDATE documents SET wrapped_dek = (SELECT wrapped_dek FROM documents WHERE id = $1) WHERE id = $2`,
      [docA, docB],
    );
    await expectDecryptFailure(docB);
  });

  test('sealed chunk text never holds plaintext', async () => {
    const { rows } = await h.db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM chunks WHERE position(convert_to('GENERAL-OSPREY', 'UTF8') in sealed_text) > 0`,
    );
    assert.equal(rows[0]?.n, '0');
  });
});
