/**
 * Deleting a subject's footprint. Every step is idempotent (it deletes what is still there) and
 * counts in the same transaction as it deletes (records.ts addCounts), so a worker that dies
 * mid-way loses nothing and double-counts nothing when Temporal retries the activity.
 *
 * Grain: a whole document goes, even a Slack thread or day where the subject wrote one message
 * among others'. The channel's cursor is marked for a full re-read, so the next sync rebuilds those
 * documents from Slack without the subject's messages (the suppression rule leaves them out and
 * redacts mentions). Why not cut lines out of the stored text: the rendered text has no reliable
 * message boundaries and the chunks' vectors would still encode the removed lines; re-rendering from
 * the source through the normal pipeline has neither problem.
 */
import type pg from 'pg';
import { inTransaction, type Queryable } from '../db/pool.ts';
import { derivedRequestIds, footprintDocumentIds, hasSlackTurns, type ArtifactCounts, type Subject } from './footprint.ts';
import { destroySubjectKeys } from './personal.ts';
import { addCounts, addDestroyedKeys, setCounts } from './records.ts';

/** Cursors of Slack text documents' channels: a full re-read rebuilds them without the subject. */
async function scheduleRescans(db: Queryable, documentIds: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ connection_id: string; scope: string }>(
    `UPDATE sync_cursors sc SET cursor = jsonb_set(sc.cursor, '{fullScanAt}', to_jsonb('1970-01-01T00:00:00.000Z'::text)), updated_at = now()
     FROM (SELECT DISTINCT d.connection_id, 'channel:' || d.container_id AS scope
           FROM documents d JOIN connections c ON c.id = d.connection_id
           WHERE d.id = ANY($1::bigint[]) AND c.source = 'slack' AND d.kind IN ('slack_thread', 'slack_day')) t
     WHERE sc.connection_id = t.connection_id AND sc.scope = t.scope AND sc.cursor ? 'fullScanAt'
     RETURNING sc.connection_id, sc.scope`,
    [documentIds],
  );
  return rows.map((r) => `${r.connection_id}/${r.scope}`);
}

/**
 * Deletes the next `batchSize` of the subject's documents — and with them (cascade) their chunks,
 * embeddings, vault blobs, grants and provenance — in one transaction. Returns how many went (0: done).
 */
export async function purgeDocumentBatch(pool: pg.Pool, subject: Subject, requestId: string, batchSize: number): Promise<number> {
  return inTransaction(pool, async (client) => {
    const ids = await footprintDocumentIds(client, subject, batchSize);
    if (ids.length === 0) return 0;
    const locked = await client.query<{ id: string }>(`SELECT id FROM documents WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`, [ids]);
    const documentIds = locked.rows.map((r) => r.id);
    const { rows } = await client.query<Record<string, number>>(
      `SELECT (SELECT count(*) FROM chunks WHERE document_id = ANY($1::bigint[]))::int AS chunks,
              (SELECT count(*) FROM vault_blobs WHERE document_id = ANY($1::bigint[]))::int AS "vaultBlobs",
              (SELECT count(*) FROM document_grants WHERE document_id = ANY($1::bigint[]))::int AS "documentGrants",
              (SELECT count(*) FROM document_subjects WHERE document_id = ANY($1::bigint[]))::int AS "documentSubjects"`,
      [documentIds],
    );
    const rescanScopes = await scheduleRescans(client, documentIds);
    const deleted = await client.query(`DELETE FROM documents WHERE id = ANY($1::bigint[])`, [documentIds]);
    const counts: ArtifactCounts = { documents: deleted.rowCount ?? 0, ...rows[0] };
    counts.embeddings = counts.chunks ?? 0;
    await addCounts(client, requestId, counts, { rescanScopes });
    return ids.length;
  });
}

/**
 * Deletes the subject's query history: their usage ledger rows (the sum is kept in the manifest for
 * cost accounting) and Slack bot conversation turns, plus anyone's turns whose answer was drawn from
 * the subject's documents. Run before the documents go: the link is the audit entries' document ids.
 */
export async function purgeQueryHistory(pool: pg.Pool, subject: Subject, requestId: string): Promise<{ derivedRequestIds: string[]; documentIds: string[] }> {
  const documentIds = await footprintDocumentIds(pool, subject);
  const derived = await derivedRequestIds(pool, documentIds);
  await inTransaction(pool, async (client) => {
    const usage = await client.query<{ usd: string }>(
      `DELETE FROM usage_ledger WHERE workspace_id = $1 AND principal_id = $2 RETURNING usd`,
      [subject.workspaceId, subject.principalId],
    );
    let slackTurns = 0;
    if (await hasSlackTurns(client)) {
      const turns = await client.query(
        `DELETE FROM slack_turns WHERE workspace_id = $1 AND (principal_id = $2 OR request_id = ANY($3::text[]))`,
        [subject.workspaceId, subject.principalId, derived],
      );
      slackTurns = turns.rowCount ?? 0;
    }
    const usd = usage.rows.reduce((sum, r) => sum + Number(r.usd), 0);
    await addCounts(client, requestId, { usageLedger: usage.rowCount ?? 0, slackTurns }, { usageUsd: usd });
  });
  return { derivedRequestIds: derived, documentIds };
}

/**
 * Destroys the subject's keys and records their ids; counts the audit entries whose personal fields
 * they sealed (all of this request's keys, so a retry reports the same number).
 */
export async function shredSubjectKeys(pool: pg.Pool, subject: Subject, requestId: string): Promise<{ destroyedKeyIds: string[]; auditEntries: number }> {
  return inTransaction(pool, async (client) => {
    await addDestroyedKeys(client, requestId, await destroySubjectKeys(client, subject.workspaceId, subject.pseudonym, requestId));
    const { rows } = await client.query<{ ids: string[]; n: number }>(
      `SELECT r.destroyed_key_ids AS ids,
              (SELECT count(*) FROM audit_log WHERE entry->'personal'->>'keyId' = ANY(r.destroyed_key_ids))::int AS n
       FROM erasure_requests r WHERE r.id = $1`,
      [requestId],
    );
    const destroyedKeyIds = rows[0]?.ids ?? [];
    const auditEntries = rows[0]?.n ?? 0;
    await setCounts(client, requestId, { subjectKeys: destroyedKeyIds.length, auditEntriesShredded: auditEntries });
    return { destroyedKeyIds, auditEntries };
  });
}
