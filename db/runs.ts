import type { ItemError } from '../connectors/types.ts';
import type { Queryable } from './pool.ts';

/** Counters a sync run accumulates; activities add to them after each stored batch. */
export interface RunCounts {
  indexed?: number;
  unchanged?: number;
  aclUpdated?: number;
  deleted?: number;
  chunks?: number;
}

/** Starts (or rejoins, when Temporal retries) the run row of a workflow execution. */
export async function beginRun(db: Queryable, connectionId: string, workflowId: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO sync_runs (workspace_id, connection_id, workflow_id)
     SELECT workspace_id, id, $2 FROM connections WHERE id = $1
     ON CONFLICT (workflow_id) DO UPDATE SET workflow_id = EXCLUDED.workflow_id
     RETURNING id`,
    [connectionId, workflowId],
  );
  const id = rows[0]?.id;
  if (!id) throw new Error(`connection ${connectionId} does not exist`);
  return id;
}

export async function addRunCounts(db: Queryable, runId: string, counts: RunCounts): Promise<void> {
  await db.query(
    `UPDATE sync_runs SET docs_indexed = docs_indexed + $2, docs_unchanged = docs_unchanged + $3,
       docs_acl_updated = docs_acl_updated + $4, docs_deleted = docs_deleted + $5, chunks_written = chunks_written + $6
     WHERE id = $1`,
    [runId, counts.indexed ?? 0, counts.unchanged ?? 0, counts.aclUpdated ?? 0, counts.deleted ?? 0, counts.chunks ?? 0],
  );
}

/** Records per-item failures of a run; the run itself goes on. */
export async function recordErrors(db: Queryable, runId: string, connectionId: string, errors: readonly ItemError[]): Promise<void> {
  if (errors.length === 0) return;
  await db.query(
    `INSERT INTO sync_errors (run_id, connection_id, item_id, code, message)
     SELECT $1, $2, t.item, t.code, left(t.message, 2000) FROM unnest($3::text[], $4::text[], $5::text[]) AS t(item, code, message)`,
    [runId, connectionId, errors.map((e) => e.itemId), errors.map((e) => e.code), errors.map((e) => e.message)],
  );
  await db.query(`UPDATE sync_runs SET errors = errors + $2 WHERE id = $1`, [runId, errors.length]);
}

export async function finishRun(db: Queryable, runId: string, status: 'succeeded' | 'failed', failure?: string): Promise<void> {
  await db.query(`UPDATE sync_runs SET status = $2, failure = $3, finished_at = now() WHERE id = $1`, [runId, status, failure ?? null]);
}

/** What a sync run did, counted (as stored once the run's batches are in). */
export interface RunTotals extends Required<RunCounts> {
  /** Items that failed in the run (rows of sync_errors). */
  errors: number;
}

export interface RunSummary extends RunTotals {
  id: string;
  status: string;
}

export async function getRun(db: Queryable, workflowId: string): Promise<RunSummary | null> {
  const { rows } = await db.query<{
    id: string; status: string; docs_indexed: number; docs_unchanged: number; docs_acl_updated: number;
    docs_deleted: number; chunks_written: number; errors: number;
  }>(`SELECT * FROM sync_runs WHERE workflow_id = $1`, [workflowId]);
  const r = rows[0];
  if (!r) return null;
  return {
    id: r.id, status: r.status, indexed: r.docs_indexed, unchanged: r.docs_unchanged, aclUpdated: r.docs_acl_updated,
    deleted: r.docs_deleted, chunks: r.chunks_written, errors: r.errors,
  };
}

/** A committed delta cursor of one scope (e.g. a channel), or null before the first sync. */
export async function getCursor(db: Queryable, connectionId: string, scope: string): Promise<unknown> {
  const { rows } = await db.query<{ cursor: unknown }>(`SELECT cursor FROM sync_cursors WHERE connection_id = $1 AND scope = $2`, [
    connectionId,
    scope,
  ]);
  return rows[0]?.cursor ?? null;
}

export async function setCursor(db: Queryable, connectionId: string, scope: string, cursor: unknown): Promise<void> {
  await db.query(
    `INSERT INTO sync_cursors (connection_id, scope, cursor) VALUES ($1, $2, $3)
     ON CONFLICT (connection_id, scope) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()`,
    [connectionId, scope, JSON.stringify(cursor)],
  );
}

export async function deleteCursor(db: Queryable, connectionId: string, scope: string): Promise<void> {
  await db.query(`DELETE FROM sync_cursors WHERE connection_id = $1 AND scope = $2`, [connectionId, scope]);
}

/** A run as GET /v1/admin/connections/:id/errors lists it. */
export interface RecentRun {
  workflowId: string;
  status: 'running' | 'succeeded' | 'failed';
  startedAt: Date;
  finishedAt: Date | null;
  errors: number;
  failure: string | null;
}

/** One failed item of a run (sync_errors). */
export interface RunItemError {
  workflowId: string;
  itemId: string;
  code: string;
  message: string;
  at: Date;
}

/**
 * The last `runs` runs of a connection (newest first) and their item errors, newest first, at most
 * `limit` of them; `truncated` when there were more.
 */
export async function recentErrors(
  db: Queryable,
  connectionId: string,
  opts: { runs: number; limit: number },
): Promise<{ runs: RecentRun[]; errors: RunItemError[]; truncated: boolean }> {
  const { rows: runs } = await db.query<{
    id: string; workflow_id: string; status: RecentRun['status']; started_at: Date; finished_at: Date | null; errors: number; failure: string | null;
  }>(
    `SELECT id, workflow_id, status, started_at, finished_at, errors, failure FROM sync_runs
     WHERE connection_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2`,
    [connectionId, opts.runs],
  );
  const { rows: errors } = await db.query<{ run_id: string; item_id: string; code: string; message: string; at: Date }>(
    `SELECT run_id, item_id, code, message, at FROM sync_errors WHERE run_id = ANY($1::bigint[])
     ORDER BY at DESC, id DESC LIMIT $2`,
    [runs.map((r) => r.id), opts.limit + 1],
  );
  const workflowOf = new Map(runs.map((r) => [r.id, r.workflow_id]));
  return {
    runs: runs.map((r) => ({
      workflowId: r.workflow_id, status: r.status, startedAt: r.started_at, finishedAt: r.finished_at, errors: r.errors, failure: r.failure,
    })),
    errors: errors.slice(0, opts.limit).map((e) => ({ workflowId: workflowOf.get(e.run_id) ?? '', itemId: e.item_id, code: e.code, message: e.message, at: e.at })),
    truncated: errors.length > opts.limit,
  };
}
