import pgvector from 'pgvector';
import type { Queryable } from '../db/pool.ts';
import { aclIds, replaceGrants, type GrantRow } from '../db/documents.ts';
import type { KeyProvider } from '../vault/key-provider.ts';
import { decrypt, encrypt, newDataKey, packSealed, unpackSealed, type VaultAad } from '../vault/envelope.ts';
import { documentKeyContext } from '../vault/wrap-contexts.ts';
import { AstryError } from '../core/errors.ts';
import type { SourceDocument } from '../connectors/types.ts';
import { recordSubjects } from '../erasure/provenance.ts';

/** A document ready to store: its extracted content, its chunks with their vectors, its grants. */
export interface PreparedDocument {
  doc: SourceDocument;
  title: string;
  text: string;
  chunks: { ordinal: number; text: string; tokenCount: number; embedding: number[] }[];
  grants: GrantRow[];
  aclHash: string;
}

function aad(workspaceId: string, documentId: string, version: number, part: string): VaultAad {
  return { workspaceId, documentId, version, part };
}

/**
 * Writes one document (row, grants, sealed blob, sealed chunks with embeddings) with a fresh data
 * key for this version. Call inside a transaction: a failure leaves the previous version intact.
 */
export async function storeDocument(
  db: Queryable,
  keys: KeyProvider,
  ids: { workspaceId: string; connectionId: string },
  prepared: PreparedDocument,
): Promise<string> {
  const { doc } = prepared;
  const { rows } = await db.query<{ id: string; version: number }>(
    `INSERT INTO documents (workspace_id, connection_id, source_id, container_id, kind, url, content_version,
                            acl_hash, wrapped_dek, kek_id, source_updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, '', '\\x', '', $8)
     ON CONFLICT (connection_id, source_id) DO UPDATE SET
       container_id = EXCLUDED.container_id, kind = EXCLUDED.kind, url = EXCLUDED.url,
       content_version = EXCLUDED.content_version, version = documents.version + 1,
       source_updated_at = EXCLUDED.source_updated_at, indexed_at = now()
     RETURNING id, version`,
    [ids.workspaceId, ids.connectionId, doc.sourceId, doc.containerId, doc.kind, doc.url, doc.contentVersion, doc.updatedAt],
  );
  const row = rows[0];
  if (!row) throw new Error(`document ${doc.sourceId} was not written`);
  const dek = newDataKey();
  try {
    // The wrap context binds the data key to one version of one document of one workspace.
    const { wrapped, keyId } = await keys.wrap(dek, documentKeyContext(ids.workspaceId, row.id, row.version));
    await db.query(`UPDATE documents SET wrapped_dek = $2, kek_id = $3 WHERE id = $1`, [row.id, wrapped, keyId]);
    const blob = Buffer.from(JSON.stringify({ title: prepared.title, text: prepared.text }), 'utf8');
    const sealedBlob = packSealed(encrypt(blob, aad(ids.workspaceId, row.id, row.version, 'blob'), dek));
    await db.query(
      `INSERT INTO vault_blobs (document_id, workspace_id, version, sealed) VALUES ($1, $2, $3, $4)
       ON CONFLICT (document_id) DO UPDATE SET version = EXCLUDED.version, sealed = EXCLUDED.sealed`,
      [row.id, ids.workspaceId, row.version, sealedBlob],
    );
    await db.query(`DELETE FROM chunks WHERE document_id = $1`, [row.id]);
    const acl = aclIds(prepared.grants);
    const sealedTexts = prepared.chunks.map((chunk) =>
      packSealed(encrypt(Buffer.from(chunk.text, 'utf8'), aad(ids.workspaceId, row.id, row.version, `chunk:${chunk.ordinal}`), dek)),
    );
    // One statement per document: unnest turns the parallel arrays into rows.
    await db.query(
      `INSERT INTO chunks (workspace_id, document_id, ordinal, acl, embedding, sealed_text, token_count)
       SELECT $1, $2, t.ordinal, $3::int[], t.embedding::vector, t.sealed, t.tokens
       FROM unnest($4::int[], $5::text[], $6::bytea[], $7::int[]) AS t(ordinal, embedding, sealed, tokens)`,
      [
        ids.workspaceId,
        row.id,
        acl,
        prepared.chunks.map((c) => c.ordinal),
        prepared.chunks.map((c) => pgvector.toSql(c.embedding)),
        sealedTexts,
        prepared.chunks.map((c) => c.tokenCount),
      ],
    );
  } finally {
    dek.fill(0);
  }
  await replaceGrants(db, row.id, prepared.grants, prepared.aclHash);
  if (doc.subjects) await recordSubjects(db, ids, [{ documentId: row.id, subjects: doc.subjects }]);
  return row.id;
}

/** Decrypted content of a stored document; DECRYPT_FAILED if any byte, key or binding is wrong. */
export async function readDocument(
  db: Queryable,
  keys: KeyProvider,
  documentId: string,
): Promise<{ title: string; text: string; version: number }> {
  const { rows } = await db.query<{ workspace_id: string; version: number; wrapped_dek: Buffer; kek_id: string; sealed: Buffer; blob_version: number }>(
    `SELECT d.workspace_id, d.version, d.wrapped_dek, d.kek_id, b.sealed, b.version AS blob_version
     FROM documents d JOIN vault_blobs b ON b.document_id = d.id WHERE d.id = $1`,
    [documentId],
  );
  const row = rows[0];
  if (!row) throw new AstryError('NOT_FOUND', `document ${documentId} not found`);
  const dek = await keys.unwrap(row.wrapped_dek, row.kek_id, documentKeyContext(row.workspace_id, documentId, row.version));
  try {
    const plain = decrypt(unpackSealed(row.sealed), aad(row.workspace_id, documentId, row.version, 'blob'), dek);
    const parsed: unknown = JSON.parse(plain.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || !('title' in parsed) || !('text' in parsed)) {
      throw new AstryError('DECRYPT_FAILED', `document ${documentId} blob has an unexpected shape`);
    }
    return { title: String(parsed.title), text: String(parsed.text), version: row.version };
  } finally {
    dek.fill(0);
  }
}
