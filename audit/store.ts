import type pg from 'pg';
import { canonicalJson } from './canonical.ts';
import { chainHash, GENESIS_HASH } from './chain.ts';
import type { AuditEntry } from './entry.ts';
import { inTransaction } from '../db/pool.ts';

/** Advisory lock key ('auditlog' in ASCII) serializing chain appends across connections and processes. */
const CHAIN_LOCK = '7022364654011846503';

/** One stored link of the chain. */
export interface ChainLink {
  seq: number;
  hash: Buffer;
}

/**
 * Appends `entries` to the chain in order, in one transaction, skipping every entry whose id is
 * already stored, so re-draining a spool after a crash never duplicates. Gives up after `timeoutMs`
 * (client side, and server side through statement/lock timeouts). Returns the links it inserted.
 */
export async function insertEntries(pool: pg.Pool, entries: readonly AuditEntry[], timeoutMs: number): Promise<ChainLink[]> {
  return withTimeout(
    inTransaction(pool, async (client) => {
      const limit = `${timeoutMs}ms`;
      await client.query(`SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true)`, [limit]);
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [CHAIN_LOCK]);
      const ids = entries.map((e) => e.id);
      const stored = await client.query<{ id: string }>(`SELECT event_id::text AS id FROM audit_log WHERE event_id = ANY($1::uuid[])`, [ids]);
      const skip = new Set(stored.rows.map((r) => r.id));
      const head = await client.query<{ seq: string; hash: Buffer }>(`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`);
      let seq = Number(head.rows[0]?.seq ?? 0);
      let prev = head.rows[0]?.hash ?? GENESIS_HASH;
      const rows: { seq: number; entry: AuditEntry; prev: Buffer; hash: Buffer }[] = [];
      for (const entry of entries) {
        if (skip.has(entry.id)) continue;
        skip.add(entry.id);
        seq += 1;
        const hash = chainHash(prev, seq, entry);
        rows.push({ seq, entry, prev, hash });
        prev = hash;
      }
      if (rows.length === 0) return [];
      // One statement for the whole batch: a drain after an outage moves thousands of entries.
      await client.query(
        `INSERT INTO audit_log (seq, event_id, workspace_id, at, entry, prev_hash, hash)
         SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::timestamptz[], $5::jsonb[], $6::bytea[], $7::bytea[])`,
        [
          rows.map((r) => r.seq),
          rows.map((r) => r.entry.id),
          rows.map((r) => r.entry.workspaceId),
          rows.map((r) => r.entry.at),
          rows.map((r) => canonicalJson(r.entry)),
          rows.map((r) => r.prev),
          rows.map((r) => r.hash),
        ],
      );
      return rows.map(({ seq, hash }) => ({ seq, hash }));
    }),
    timeoutMs,
    'audit insert',
  );
}

/** The newest link, or undefined while the log is empty. */
export async function chainHead(pool: pg.Pool): Promise<ChainLink | undefined> {
  const { rows } = await pool.query<{ seq: string; hash: Buffer }>(`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`);
  const row = rows[0];
  return row && { seq: Number(row.seq), hash: row.hash };
}

/** Rejects after `ms` if `work` has not settled; `work` keeps running and its outcome is ignored. */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  work.catch(() => undefined);
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
