import { getConnection } from '../../db/connections.ts';
import { readersOf } from '../../db/principals.ts';
import { FILES_CONTAINER } from '../../workflows/activities/slack-principals.ts';
import type { CliContext } from '../context.ts';

async function chunkCount(ctx: CliContext, documentIds: string[]): Promise<number> {
  const { rows } = await ctx.pool.query<{ n: string }>(`SELECT count(*) AS n FROM chunks WHERE document_id = ANY($1::bigint[])`, [documentIds]);
  return Number(rows[0]?.n ?? 0);
}

/** One container (a channel, or the files of a connection) and who can read what it holds. */
export interface ContainerReport {
  container: string;
  name: string;
  documents: number;
  chunks: number;
  readers: string[];
}

/**
 * What a connection indexed, per channel, with the people who can read it (grants expanded
 * through groups). Readers are computed per document and listed per container as their union.
 */
export async function indexReport(ctx: CliContext, connectionName: string): Promise<ContainerReport[]> {
  const connection = await getConnection(ctx.pool, connectionName, await ctx.workspaceId());
  const { rows } = await ctx.pool.query<{ container_id: string; name: string | null; ids: string[]; sources: string[]; chunks: string }>(
    `SELECT d.container_id,
            (SELECT p.display_name FROM principals p WHERE p.workspace_id = d.workspace_id AND p.kind = 'group'
               AND p.key LIKE '%:channel:' || d.container_id) AS name,
            array_agg(d.id ORDER BY d.id) AS ids, array_agg(d.source_id ORDER BY d.id) AS sources,
            (SELECT count(*) FROM chunks c WHERE c.document_id = ANY(array_agg(d.id))) AS chunks
     FROM documents d WHERE d.connection_id = $1
     GROUP BY d.workspace_id, d.container_id ORDER BY 2 NULLS LAST, 1`,
    [connection.id],
  );
  const reports: ContainerReport[] = [];
  // Files are listed one by one: each has its own ACL (the union of the channels it is shared in).
  const units = rows.flatMap((row) =>
    row.container_id === FILES_CONTAINER
      ? row.ids.map((id, i) => ({ ...row, name: `${row.sources[i] ?? id}`, ids: [id], chunks: '' }))
      : [row],
  );
  for (const row of units) {
    const readers = await readersOf(ctx.pool, row.ids);
    reports.push({
      container: row.container_id,
      name: row.name ?? row.container_id,
      documents: row.ids.length,
      chunks: row.chunks === '' ? await chunkCount(ctx, row.ids) : Number(row.chunks),
      readers: [...new Set(readers.map((r) => r.displayName || r.key))],
    });
  }
  return reports;
}

export async function printIndexReport(ctx: CliContext, connectionName: string): Promise<void> {
  for (const r of await indexReport(ctx, connectionName)) {
    console.log(`${r.name.padEnd(28)} ${String(r.documents).padStart(5)} docs ${String(r.chunks).padStart(6)} chunks  readable by: ${r.readers.join(', ') || 'nobody'}`);
  }
}
