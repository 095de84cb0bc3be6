import type { Queryable } from '../../db/pool.ts';
import { principalSet } from '../../db/principals.ts';

/** The canonical principal a source user id (Slack, Entra, Google) of a connection resolves to, or null if unknown. */
export async function principalOfSourceUser(db: Queryable, connectionId: string, slackUserId: string): Promise<number | null> {
  const { rows } = await db.query<{ principal_id: number }>(
    `SELECT principal_id FROM source_identities WHERE connection_id = $1 AND source_user_id = $2`,
    [connectionId, slackUserId],
  );
  return rows[0]?.principal_id ?? null;
}

/** Source ids of the documents a Slack user can read: any grant in their principal set. */
export async function readableSourceIds(db: Queryable, connectionId: string, slackUserId: string): Promise<Set<string>> {
  const principal = await principalOfSourceUser(db, connectionId, slackUserId);
  if (principal === null) return new Set();
  const set = await principalSet(db, principal);
  const { rows } = await db.query<{ source_id: string }>(
    `SELECT DISTINCT d.source_id FROM documents d JOIN document_grants g ON g.document_id = d.id
     WHERE d.connection_id = $1 AND g.principal_id = ANY($2::int[])`,
    [connectionId, set],
  );
  return new Set(rows.map((r) => r.source_id));
}

/** All documents of a connection: source id -> container and kind. */
export async function allDocuments(db: Queryable, connectionId: string): Promise<Map<string, { container: string; kind: string; id: string }>> {
  const { rows } = await db.query<{ id: string; source_id: string; container_id: string; kind: string }>(
    `SELECT id, source_id, container_id, kind FROM documents WHERE connection_id = $1`,
    [connectionId],
  );
  return new Map(rows.map((r) => [r.source_id, { container: r.container_id, kind: r.kind, id: r.id }]));
}
