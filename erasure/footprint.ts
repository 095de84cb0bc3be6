/**
 * A subject's footprint: everything Astry derived that concerns them, found through provenance.
 * Documents (and their chunks, embeddings, vault blobs, grants and provenance rows) whose subjects
 * name one of the person's source identities or their canonical user; their query history (usage
 * ledger, Slack bot turns, audit entries under their key); answers given to anyone that were drawn
 * from those documents (Slack bot turns, found through the audit entries' document ids).
 */
import type { Queryable } from '../db/pool.ts';

/** Who is being erased: a canonical user (null once the directory no longer has them) and their pseudonym. */
export interface Subject {
  workspaceId: string;
  principalId: number | null;
  pseudonym: string;
}

/** Counts per artifact class, e.g. `{ documents: 12, chunks: 40 }`. */
export type ArtifactCounts = Record<string, number>;

/** Ids of the subject's documents, ascending, at most `limit`. */
export async function footprintDocumentIds(db: Queryable, subject: Subject, limit = 1_000_000): Promise<string[]> {
  if (subject.principalId === null) return [];
  const { rows } = await db.query<{ id: string }>(
    `SELECT DISTINCT ds.document_id AS id FROM document_subjects ds
     WHERE ds.workspace_id = $1
       AND (ds.principal_id = $2 OR EXISTS (
             SELECT 1 FROM source_identities si
             WHERE si.principal_id = $2 AND si.connection_id = ds.connection_id AND si.source_user_id = ds.source_user_id))
     ORDER BY ds.document_id LIMIT $3`,
    [subject.workspaceId, subject.principalId, limit],
  );
  return rows.map((r) => r.id);
}

/** Request ids of queries (anyone's) that were shown one of `documentIds`: their answers may quote them. */
export async function derivedRequestIds(db: Queryable, documentIds: readonly string[]): Promise<string[]> {
  if (documentIds.length === 0) return [];
  const { rows } = await db.query<{ request_id: string }>(
    `SELECT DISTINCT entry->'details'->>'requestId' AS request_id FROM audit_log
     WHERE entry->'documentIds' ?| $1::text[] AND entry->'details'->>'requestId' IS NOT NULL`,
    [documentIds],
  );
  return rows.map((r) => r.request_id);
}

/** True when the Slack bot's conversation table exists (it ships with the Slack bot). */
export async function hasSlackTurns(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ present: boolean }>(`SELECT to_regclass('slack_turns') IS NOT NULL AS present`);
  return rows[0]?.present === true;
}

/** Everything the footprint holds now, counted per artifact class (nothing is read in clear). */
export async function measureFootprint(db: Queryable, subject: Subject): Promise<ArtifactCounts> {
  const documentIds = await footprintDocumentIds(db, subject);
  const { rows } = await db.query<Record<string, number>>(
    `SELECT
       (SELECT count(*) FROM chunks WHERE document_id = ANY($1::bigint[]))::int AS chunks,
       (SELECT count(*) FROM vault_blobs WHERE document_id = ANY($1::bigint[]))::int AS "vaultBlobs",
       (SELECT count(*) FROM document_grants WHERE document_id = ANY($1::bigint[]))::int AS "documentGrants",
       (SELECT count(*) FROM document_subjects WHERE document_id = ANY($1::bigint[]))::int AS "documentSubjects",
       (SELECT count(DISTINCT document_id) FROM document_subjects ds WHERE document_id = ANY($1::bigint[]) AND role = 'author'
          AND (ds.principal_id = $3 OR EXISTS (SELECT 1 FROM source_identities si WHERE si.principal_id = $3
               AND si.connection_id = ds.connection_id AND si.source_user_id = ds.source_user_id)))::int AS "documentsAuthored",
       (SELECT count(*) FROM usage_ledger WHERE principal_id = $3 AND workspace_id = $2)::int AS "usageLedger",
       (SELECT count(*) FROM audit_log WHERE entry->'personal'->>'keyId' IN (
          SELECT id FROM subject_keys WHERE workspace_id = $2 AND subject = $4))::int AS "auditEntries",
       (SELECT count(*) FROM subject_keys WHERE workspace_id = $2 AND subject = $4 AND destroyed_at IS NULL)::int AS "subjectKeys"`,
    [documentIds, subject.workspaceId, subject.principalId, subject.pseudonym],
  );
  const counts: ArtifactCounts = { documents: documentIds.length, ...rows[0] };
  counts.embeddings = counts.chunks ?? 0;
  counts.slackTurns = await countSlackTurns(db, subject, await derivedRequestIds(db, documentIds));
  return counts;
}

async function countSlackTurns(db: Queryable, subject: Subject, requestIds: readonly string[]): Promise<number> {
  if (!(await hasSlackTurns(db))) return 0;
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM slack_turns WHERE workspace_id = $1 AND (principal_id = $2 OR request_id = ANY($3::text[]))`,
    [subject.workspaceId, subject.principalId, requestIds],
  );
  return rows[0]?.n ?? 0;
}
