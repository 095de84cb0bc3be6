import pgvector from 'pgvector';
import type pg from 'pg';
import { inTransaction } from '../db/pool.ts';

/** How retrieval was executed; chosen by the application, never left to the planner. */
export type SearchPath = 'exact' | 'hnsw';

/** A chunk the asker may read, nearest first. */
export interface Hit {
  chunkId: string;
  documentId: string;
  ordinal: number;
  distance: number;
}

export interface SearchResult {
  hits: Hit[];
  path: SearchPath;
  /** Visible chunks counted up to the exact-scan threshold (threshold + 1 means "more"). */
  visibleEstimate: number;
}

/** Options of authorized search; every field has a default measured on this machine (docs/query.md). */
export interface SearchOptions {
  /** Hits to return (default 10). */
  k?: number;
  /** Up to this many visible chunks, scan them exactly (recall 1.0); above it, HNSW with iterative scan (default 20000). */
  exactMaxVisible?: number;
  /** HNSW candidate list size (default 400: measured recall@10 0.98–0.995 at 50% visibility, docs/query-benchmarks.md). */
  efSearch?: number;
  /** HNSW iterative scan stops after this many tuples (default 40000). */
  maxScanTuples?: number;
}

/**
 * Nearest chunks among those whose ACL intersects the asker's principal set, in one SQL query: the
 * ACL is a predicate of the vector query, so nothing outside the authorized set is ever returned,
 * ranked or counted. The path is chosen from a bounded count of the visible chunks: small visible sets
 * are scanned exactly through the GIN index (HNSW post-filtering would return fewer than k rows),
 * large ones use HNSW with pgvector's iterative scan so filtering still yields k rows.
 */
export async function searchAuthorized(
  pool: pg.Pool,
  query: { workspaceId: string; principalIds: readonly number[]; embedding: readonly number[] },
  options: SearchOptions = {},
): Promise<SearchResult> {
  const k = options.k ?? 10;
  const threshold = options.exactMaxVisible ?? 20_000;
  const principals = [...new Set(query.principalIds)];
  if (principals.length === 0) return { hits: [], path: 'exact', visibleEstimate: 0 };
  const vector = pgvector.toSql([...query.embedding]);
  return inTransaction(pool, async (tx) => {
    const counted = await tx.query<{ n: string }>(
      `SELECT count(*) AS n FROM (SELECT 1 FROM chunks WHERE workspace_id = $1 AND acl && $2::int[] LIMIT $3) visible`,
      [query.workspaceId, principals, threshold + 1],
    );
    const visibleEstimate = Number(counted.rows[0]?.n ?? 0);
    const path: SearchPath = visibleEstimate <= threshold ? 'exact' : 'hnsw';
    if (path === 'exact') {
      // GIN bitmap scan of the visible rows, then an exact distance sort: no HNSW index scan.
      await tx.query('SET LOCAL enable_indexscan = off');
    } else {
      await tx.query('SET LOCAL enable_seqscan = off');
      await tx.query('SET LOCAL enable_bitmapscan = off');
      await tx.query(`SET LOCAL hnsw.ef_search = ${Math.trunc(options.efSearch ?? 400)}`);
      await tx.query(`SET LOCAL hnsw.iterative_scan = relaxed_order`);
      await tx.query(`SET LOCAL hnsw.max_scan_tuples = ${Math.trunc(options.maxScanTuples ?? 40_000)}`);
    }
    // relaxed_order may return slightly out-of-order rows: re-sort the materialized candidates.
    const { rows } = await tx.query<{ id: string; document_id: string; ordinal: number; distance: number }>(
      `WITH candidates AS MATERIALIZED (
         SELECT id, document_id, ordinal, embedding <=> $3::vector AS distance
         FROM chunks
         WHERE workspace_id = $1 AND acl && $2::int[]
           -- A grant that lapsed at the source stops granting now, even before the next sync.
           AND EXISTS (SELECT 1 FROM document_grants g
                       WHERE g.document_id = chunks.document_id AND g.principal_id = ANY($2::int[])
                         AND (g.expires_at IS NULL OR g.expires_at > now()))
         ORDER BY embedding <=> $3::vector
         LIMIT $4
       )
       SELECT * FROM candidates ORDER BY distance, id`,
      [query.workspaceId, principals, vector, k],
    );
    return {
      path,
      visibleEstimate,
      hits: rows.map((r) => ({ chunkId: r.id, documentId: r.document_id, ordinal: r.ordinal, distance: Number(r.distance) })),
    };
  });
}
