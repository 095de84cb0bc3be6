import type { Queryable } from './pool.ts';

/** What the pipeline needs to know about a stored document to decide skip / ACL-only / re-index. */
export interface StoredDocument {
  id: string;
  contentVersion: string;
  aclHash: string;
  version: number;
}

/** The stored state of the given source ids of one connection. */
export async function findDocuments(
  db: Queryable,
  connectionId: string,
  sourceIds: readonly string[],
): Promise<Map<string, StoredDocument>> {
  const { rows } = await db.query<{ id: string; source_id: string; content_version: string; acl_hash: string; version: number }>(
    `SELECT id, source_id, content_version, acl_hash, version FROM documents
     WHERE connection_id = $1 AND source_id = ANY($2::text[])`,
    [connectionId, sourceIds],
  );
  return new Map(
    rows.map((r) => [r.source_id, { id: r.id, contentVersion: r.content_version, aclHash: r.acl_hash, version: r.version }]),
  );
}

/** One stored grant: a principal id and, for grants that lapse at the source, when. */
export interface GrantRow {
  principalId: number;
  expiresAt?: Date | null;
}

/** The sorted, de-duplicated principal ids of grants: the ACL copy on chunk rows. */
export function aclIds(grants: readonly GrantRow[]): number[] {
  return [...new Set(grants.map((g) => g.principalId))].sort((a, b) => a - b);
}

/** Replaces a document's grants and the ACL copy on its chunks; never touches embeddings. */
export async function replaceGrants(db: Queryable, documentId: string, grants: readonly GrantRow[], aclHash: string): Promise<void> {
  const acl = aclIds(grants);
  // The latest expiry wins when a principal is granted twice; no expiry (null) beats any date.
  const expiry = new Map<number, Date | null>();
  for (const g of grants) {
    const prev = expiry.get(g.principalId);
    const next = g.expiresAt ?? null;
    expiry.set(g.principalId, prev === undefined ? next : prev === null || next === null ? null : prev > next ? prev : next);
  }
  await db.query(`DELETE FROM document_grants WHERE document_id = $1 AND NOT (principal_id = ANY($2::int[]))`, [documentId, acl]);
  await db.query(
    `INSERT INTO document_grants (document_id, principal_id, expires_at)
     SELECT $1, t.p, t.e FROM unnest($2::int[], $3::timestamptz[]) AS t(p, e)
     ON CONFLICT (document_id, principal_id) DO UPDATE SET expires_at = EXCLUDED.expires_at`,
    [documentId, acl, acl.map((id) => expiry.get(id) ?? null)],
  );
  await db.query(`UPDATE chunks SET acl = $2 WHERE document_id = $1`, [documentId, acl]);
  await db.query(`UPDATE documents SET acl_hash = $2 WHERE id = $1`, [documentId, aclHash]);
}

/** Deletes documents by source id; chunks (vectors), vault blobs and grants go with them (cascade). */
export async function deleteDocuments(db: Queryable, connectionId: string, sourceIds: readonly string[]): Promise<number> {
  if (sourceIds.length === 0) return 0;
  const result = await db.query(`DELETE FROM documents WHERE connection_id = $1 AND source_id = ANY($2::text[])`, [
    connectionId,
    sourceIds,
  ]);
  return result.rowCount ?? 0;
}

/** Source ids of a connection's documents in one container (optionally of one kind). */
export async function documentsInContainer(
  db: Queryable,
  connectionId: string,
  containerId: string,
): Promise<{ sourceId: string; aclHash: string; id: string; sourceUpdatedAt: Date }[]> {
  const { rows } = await db.query<{ source_id: string; acl_hash: string; id: string; source_updated_at: Date }>(
    `SELECT id, source_id, acl_hash, source_updated_at FROM documents WHERE connection_id = $1 AND container_id = $2`,
    [connectionId, containerId],
  );
  return rows.map((r) => ({ sourceId: r.source_id, aclHash: r.acl_hash, id: r.id, sourceUpdatedAt: r.source_updated_at }));
}

/** Every container that holds documents of this connection. */
export async function containersOf(db: Queryable, connectionId: string): Promise<string[]> {
  const { rows } = await db.query<{ container_id: string }>(
    `SELECT DISTINCT container_id FROM documents WHERE connection_id = $1`,
    [connectionId],
  );
  return rows.map((r) => r.container_id);
}
