/**
 * Every data key Astry stores wrapped by a KEK, and re-wrapping them under the active KEK (KEK
 * rotation, docs/keys.md). Only the small wrapped keys change: documents, chunks, blobs and secrets
 * stay sealed under their data keys, which are unwrapped and wrapped again in memory, never stored.
 */
import { z } from 'zod';
import { isAstryError } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import type { KeyRing } from './key-provider.ts';
import { connectionKeyContext, documentKeyContext, pseudonymKeyContext, slackTurnKeyContext, subjectKeyContext } from './wrap-contexts.ts';

/** A table holding wrapped data keys, and how to name the context each row's key is wrapped under. */
interface WrappedKeyTable {
  table: string;
  /** Primary key column, iterated in order. */
  key: string;
  keyType: 'bigint' | 'text';
  wrapped: string;
  /** More columns the context needs, selected as text. */
  columns: string[];
  context(row: Record<string, string>): string;
}

const col = (row: Record<string, string>, name: string): string => z.string().parse(row[name]);

/** Every wrapped-key column of the schema (grep `kek_id` in schema/): add a table here when one is added there. */
export const WRAPPED_KEY_TABLES: readonly WrappedKeyTable[] = [
  {
    table: 'connections', key: 'id', keyType: 'bigint', wrapped: 'wrapped_dek', columns: ['workspace_id', 'name'],
    context: (r) => connectionKeyContext(col(r, 'workspace_id'), col(r, 'name')),
  },
  {
    table: 'documents', key: 'id', keyType: 'bigint', wrapped: 'wrapped_dek', columns: ['workspace_id', 'version'],
    context: (r) => documentKeyContext(col(r, 'workspace_id'), col(r, 'key'), Number(col(r, 'version'))),
  },
  {
    table: 'slack_turns', key: 'id', keyType: 'bigint', wrapped: 'wrapped_dek', columns: ['workspace_id', 'request_id'],
    context: (r) => slackTurnKeyContext(col(r, 'workspace_id'), col(r, 'request_id')),
  },
  {
    table: 'pseudonym_keys', key: 'workspace_id', keyType: 'bigint', wrapped: 'wrapped_key', columns: [],
    context: (r) => pseudonymKeyContext(col(r, 'key')),
  },
  {
    // Destroyed subject keys (erasure) have no wrapped key left: nothing to re-wrap.
    table: 'subject_keys', key: 'id', keyType: 'text', wrapped: 'wrapped_key', columns: ['workspace_id'],
    context: (r) => subjectKeyContext(col(r, 'workspace_id'), col(r, 'key')),
  },
];

/** How many wrapped keys each KEK wraps, per table (kek id -> table -> rows). */
export async function keyUsage(db: Queryable): Promise<Map<string, Map<string, number>>> {
  const usage = new Map<string, Map<string, number>>();
  for (const t of WRAPPED_KEY_TABLES) {
    const { rows } = await db.query<{ kek_id: string; n: number }>(
      `SELECT kek_id, count(*)::int AS n FROM ${t.table} WHERE ${t.wrapped} IS NOT NULL GROUP BY kek_id`,
    );
    for (const r of rows) {
      const byTable = usage.get(r.kek_id) ?? new Map<string, number>();
      byTable.set(t.table, r.n);
      usage.set(r.kek_id, byTable);
    }
  }
  return usage;
}

/** Rows of every table whose key is not wrapped by `keyId`. */
export async function rowsNotUnder(db: Queryable, keyId: string): Promise<number> {
  let total = 0;
  for (const [id, byTable] of await keyUsage(db)) if (id !== keyId) for (const n of byTable.values()) total += n;
  return total;
}

/** What re-wrapping did to one table. */
export interface TableRewrap {
  table: string;
  /** Rows already under the target KEK when the pass began (skipped). */
  alreadyCurrent: number;
  rewrapped: number;
  /** Rows written by someone else between our read and our update (left as they are: their writer's KEK). */
  changedConcurrently: number;
  /** Rows whose key could not be unwrapped (unknown KEK, tampering): listed in `failures`, left as they are. */
  failed: number;
  /** Rows not under the target KEK when the pass ended. */
  remaining: number;
}

/** What a re-wrap pass did. */
export interface RewrapReport {
  /** The KEK every key was re-wrapped to. */
  target: string;
  tables: TableRewrap[];
  /** The first 20 rows that failed, by table and key. */
  failures: { table: string; key: string; kekId: string; reason: string }[];
  /** True when `maxBatches` stopped the pass early: run it again to continue. */
  stopped: boolean;
}

/** Options of `rewrapAll`. */
export interface RewrapOptions {
  /** Rows read, re-wrapped and updated together (one UPDATE), default 500. */
  batchSize?: number;
  /** Stop after this many batches in all (default: none); a later pass continues where this one stopped. */
  maxBatches?: number;
  /** Called after every batch, for progress output. */
  onBatch?: (table: string, rewrapped: number) => void;
}

/**
 * Re-wraps every wrapped data key that is not under the ring's active KEK to it, table by table, in
 * key order, a batch per UPDATE. Idempotent and resumable: rows already under the active KEK are
 * never touched, so a pass that stopped (or crashed) is finished by running it again. An UPDATE only
 * lands on a row whose wrapped key is still the one that was read, so a concurrent writer always wins.
 */
export async function rewrapAll(db: Queryable, ring: KeyRing, opts: RewrapOptions = {}): Promise<RewrapReport> {
  const batchSize = opts.batchSize ?? 500;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  const target = await ring.activeKeyId();
  const report: RewrapReport = { target, tables: [], failures: [], stopped: false };
  let batches = 0;
  for (const t of WRAPPED_KEY_TABLES) {
    const counts = { alreadyCurrent: 0, rewrapped: 0, changedConcurrently: 0, failed: 0 };
    const current = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t.table} WHERE kek_id = $1`, [target]);
    counts.alreadyCurrent = current.rows[0]?.n ?? 0;
    let after: string | null = null;
    while (!report.stopped) {
      if (opts.maxBatches !== undefined && batches >= opts.maxBatches) {
        report.stopped = true;
        break;
      }
      const extra = t.columns.map((c) => `, ${c}::text AS ${c}`).join('');
      const { rows } = await db.query<Record<string, unknown>>(
        `SELECT ${t.key}::text AS key, ${t.wrapped} AS wrapped, kek_id${extra} FROM ${t.table}
         WHERE kek_id IS DISTINCT FROM $1 AND ${t.wrapped} IS NOT NULL AND ($2::${t.keyType} IS NULL OR ${t.key} > $2::${t.keyType})
         ORDER BY ${t.key} LIMIT $3`,
        [target, after, batchSize],
      );
      if (rows.length === 0) break;
      batches += 1;
      const update = { keys: [] as string[], wrapped: [] as Buffer[], kekIds: [] as string[], old: [] as Buffer[] };
      for (const raw of rows) {
        const row = RowSchema.parse(raw);
        after = row.key;
        const texts = Object.fromEntries(Object.entries(raw).filter((e): e is [string, string] => typeof e[1] === 'string'));
        const context = t.context(texts);
        let dek: Buffer | undefined;
        try {
          dek = await ring.unwrap(row.wrapped, row.kek_id, context);
          const next = await ring.wrap(dek, context);
          update.keys.push(row.key);
          update.wrapped.push(next.wrapped);
          update.kekIds.push(next.keyId);
          update.old.push(row.wrapped);
        } catch (err) {
          if (!isAstryError(err, 'DECRYPT_FAILED')) throw err;
          counts.failed += 1;
          if (report.failures.length < 20) report.failures.push({ table: t.table, key: row.key, kekId: row.kek_id, reason: err.message });
        } finally {
          dek?.fill(0);
        }
      }
      if (update.keys.length > 0) {
        const result = await db.query(
          `UPDATE ${t.table} AS t SET ${t.wrapped} = v.wrapped, kek_id = v.kek_id
           FROM unnest($1::${t.keyType}[], $2::bytea[], $3::text[], $4::bytea[]) AS v(key, wrapped, kek_id, old)
           WHERE t.${t.key} = v.key AND t.${t.wrapped} = v.old`,
          [update.keys, update.wrapped, update.kekIds, update.old],
        );
        const landed = result.rowCount ?? 0;
        counts.rewrapped += landed;
        counts.changedConcurrently += update.keys.length - landed;
      }
      opts.onBatch?.(t.table, counts.rewrapped);
      if (rows.length < batchSize) break;
    }
    const left = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${t.table} WHERE kek_id IS DISTINCT FROM $1 AND ${t.wrapped} IS NOT NULL`, [target],
    );
    report.tables.push({ table: t.table, ...counts, remaining: left.rows[0]?.n ?? 0 });
  }
  return report;
}

const RowSchema = z.object({ key: z.string(), wrapped: z.instanceof(Buffer), kek_id: z.string() });
