/**
 * Provenance of documents: the people each one concerns, written by the pipeline when it stores or
 * re-checks a document. Chunks, embeddings and vault blobs hang off their document (foreign keys),
 * so a person's documents are their share of every derived artifact of the index.
 */
import type { DocumentSubject } from '../connectors/types.ts';
import type { Queryable } from '../db/pool.ts';

/** A stored document and the people its connector says it concerns. */
export interface DocumentProvenance {
  documentId: string;
  subjects: readonly DocumentSubject[];
}

/**
 * Makes document_subjects say exactly `subjects` for each given document, resolving each source user
 * to the canonical user of its source identity (when known). Two statements for any number of documents.
 */
export async function recordSubjects(
  db: Queryable,
  target: { workspaceId: string; connectionId: string },
  entries: readonly DocumentProvenance[],
): Promise<void> {
  if (entries.length === 0) return;
  const rows = entries.flatMap((e) => [...new Map(e.subjects.map((s) => [`${s.role}:${s.sourceUserId}`, s])).values()].map((s) => ({ d: e.documentId, ...s })));
  const params = [rows.map((r) => r.d), rows.map((r) => r.sourceUserId), rows.map((r) => r.role)];
  await db.query(
    `DELETE FROM document_subjects ds WHERE ds.document_id = ANY($1::bigint[])
       AND NOT EXISTS (SELECT 1 FROM unnest($2::bigint[], $3::text[], $4::text[]) AS t(d, u, r)
                       WHERE t.d = ds.document_id AND t.u = ds.source_user_id AND t.r = ds.role)`,
    [entries.map((e) => e.documentId), ...params],
  );
  if (rows.length === 0) return;
  await db.query(
    `INSERT INTO document_subjects (document_id, workspace_id, connection_id, source_user_id, role, principal_id)
     SELECT t.d, $4, $5, t.u, t.r, si.principal_id
     FROM unnest($1::bigint[], $2::text[], $3::text[]) AS t(d, u, r)
     LEFT JOIN source_identities si ON si.connection_id = $5 AND si.source_user_id = t.u
     ON CONFLICT (document_id, source_user_id, role) DO UPDATE SET principal_id = EXCLUDED.principal_id
       WHERE document_subjects.principal_id IS DISTINCT FROM EXCLUDED.principal_id`,
    [...params, target.workspaceId, target.connectionId],
  );
}
