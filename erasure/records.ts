/** erasure_requests: one row per erased subject, the running tally of what was erased, and the signed result. */
import { z } from 'zod';
import { CheckpointSchema } from '../audit/checkpoint.ts';
import type { Queryable } from '../db/pool.ts';
import type { ArtifactCounts } from './footprint.ts';

/** Where the erasure's own audit entry sits and the signed checkpoint covering it. */
export const AuditProofSchema = z.strictObject({
  entry: z.strictObject({ seq: z.number().int().min(1), eventId: z.uuid() }),
  checkpoint: CheckpointSchema,
});
export type AuditProof = z.infer<typeof AuditProofSchema>;

const CountsSchema = z.record(z.string(), z.number());
const NotesSchema = z.object({ rescanScopes: z.array(z.string()).default([]), usageUsd: z.number().default(0) });
export type ErasureNotes = z.infer<typeof NotesSchema>;

/** A stored request, as the activities and the bundle read it. */
export interface ErasureRecord {
  id: string;
  workspaceId: string;
  subject: string;
  requestedBy: string;
  reason: string | null;
  requestedAt: Date;
  status: 'running' | 'completed';
  startedAt: Date;
  completedAt: Date | null;
  footprint: ArtifactCounts | null;
  counts: ArtifactCounts;
  notes: ErasureNotes;
  destroyedKeyIds: string[];
  audit: AuditProof | null;
  bundle: { manifest: string; signature: Buffer; publicKeyPem: string } | null;
}

interface Row {
  id: string; workspace_id: string; subject: string; requested_by: string; reason: string | null; requested_at: Date;
  status: 'running' | 'completed'; started_at: Date; completed_at: Date | null; footprint: unknown; counts: unknown; notes: unknown;
  destroyed_key_ids: string[]; audit: unknown; manifest: string | null; signature: Buffer | null; public_key: string | null;
}

function toRecord(r: Row): ErasureRecord {
  return {
    id: r.id, workspaceId: r.workspace_id, subject: r.subject, requestedBy: r.requested_by, reason: r.reason,
    requestedAt: r.requested_at, status: r.status, startedAt: r.started_at, completedAt: r.completed_at,
    footprint: r.footprint === null ? null : CountsSchema.parse(r.footprint),
    counts: CountsSchema.parse(r.counts),
    notes: NotesSchema.parse(r.notes),
    destroyedKeyIds: r.destroyed_key_ids,
    audit: r.audit === null ? null : AuditProofSchema.parse(r.audit),
    bundle: r.manifest !== null && r.signature !== null && r.public_key !== null ? { manifest: r.manifest, signature: r.signature, publicKeyPem: r.public_key } : null,
  };
}

/** Creates the request row, or returns the existing one (a retried or repeated start). */
export async function beginRecord(
  db: Queryable,
  r: { id: string; workspaceId: string; subject: string; requestedBy: string; reason: string | null; requestedAt: string },
): Promise<ErasureRecord> {
  await db.query(
    `INSERT INTO erasure_requests (id, workspace_id, subject, requested_by, reason, requested_at)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
    [r.id, r.workspaceId, r.subject, r.requestedBy, r.reason, r.requestedAt],
  );
  const record = await getRecord(db, r.id);
  if (!record) throw new Error(`erasure request ${r.id} conflicts with another request for the same subject`);
  return record;
}

export async function getRecord(db: Queryable, id: string, opts: { forUpdate?: boolean } = {}): Promise<ErasureRecord | null> {
  const { rows } = await db.query<Row>(`SELECT * FROM erasure_requests WHERE id = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] ? toRecord(rows[0]) : null;
}

/** The request for a subject (by pseudonym), whatever its state. */
export async function recordForSubject(db: Queryable, workspaceId: string, subject: string): Promise<ErasureRecord | null> {
  const { rows } = await db.query<Row>(`SELECT * FROM erasure_requests WHERE workspace_id = $1 AND subject = $2`, [workspaceId, subject]);
  return rows[0] ? toRecord(rows[0]) : null;
}

/**
 * Adds to the tally (and merges notes) under a row lock. Call in the transaction that did the
 * deleting: the tally then moves exactly when the data goes, whatever crashes in between.
 */
export async function addCounts(db: Queryable, id: string, delta: ArtifactCounts, notes: Partial<ErasureNotes> = {}): Promise<void> {
  const record = await getRecord(db, id, { forUpdate: true });
  if (!record) throw new Error(`erasure request ${id} does not exist`);
  const counts = { ...record.counts };
  for (const [k, v] of Object.entries(delta)) counts[k] = (counts[k] ?? 0) + v;
  const merged: ErasureNotes = {
    rescanScopes: [...new Set([...record.notes.rescanScopes, ...(notes.rescanScopes ?? [])])].sort(),
    usageUsd: record.notes.usageUsd + (notes.usageUsd ?? 0),
  };
  await db.query(`UPDATE erasure_requests SET counts = $2, notes = $3 WHERE id = $1`, [id, counts, merged]);
}

/** Sets counts that are measured rather than accumulated (e.g. audit entries under the destroyed keys). */
export async function setCounts(db: Queryable, id: string, values: ArtifactCounts): Promise<void> {
  await db.query(`UPDATE erasure_requests SET counts = counts || $2::jsonb WHERE id = $1`, [id, values]);
}

/** Keeps the first footprint measured: a retry after partial deletion must not shrink it. */
export async function setFootprint(db: Queryable, id: string, footprint: ArtifactCounts): Promise<void> {
  await db.query(`UPDATE erasure_requests SET footprint = coalesce(footprint, $2) WHERE id = $1`, [id, footprint]);
}

export async function addDestroyedKeys(db: Queryable, id: string, keyIds: readonly string[]): Promise<void> {
  await db.query(
    `UPDATE erasure_requests SET destroyed_key_ids = ARRAY(SELECT DISTINCT k FROM unnest(destroyed_key_ids || $2::text[]) AS k ORDER BY k) WHERE id = $1`,
    [id, keyIds],
  );
}

/** Keeps the first audit proof recorded. */
export async function setAuditProof(db: Queryable, id: string, proof: AuditProof): Promise<void> {
  await db.query(`UPDATE erasure_requests SET audit = coalesce(audit, $2) WHERE id = $1`, [id, proof]);
}

/** Stores the signed manifest and completes the request, unless a previous attempt already did. */
export async function completeRecord(db: Queryable, id: string, completedAt: Date, bundle: { manifest: string; signature: Buffer; publicKeyPem: string }): Promise<void> {
  await db.query(
    `UPDATE erasure_requests SET status = 'completed', completed_at = $2, manifest = $3, signature = $4, public_key = $5
     WHERE id = $1 AND manifest IS NULL`,
    [id, completedAt, bundle.manifest, bundle.signature, bundle.publicKeyPem],
  );
}
