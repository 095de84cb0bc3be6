import type { GroupMembers, PrincipalRef, SourceIdentity } from '../connectors/types.ts';
import type { Queryable } from './pool.ts';

/** Map key of a principal reference: `<kind>:<key>`. */
export function principalKey(ref: PrincipalRef): string {
  return `${ref.kind}:${ref.key}`;
}

/** Returns the ids of the given principals, creating the missing ones (display names only set on creation). */
export async function ensurePrincipals(
  db: Queryable,
  workspaceId: string,
  refs: readonly PrincipalRef[],
  names: ReadonlyMap<string, string> = new Map(),
): Promise<Map<string, number>> {
  const unique = [...new Map(refs.map((r) => [principalKey(r), r])).values()];
  const ids = new Map<string, number>();
  if (unique.length === 0) return ids;
  const kinds = unique.map((r) => r.kind);
  const keys = unique.map((r) => r.key);
  const displayNames = unique.map((r) => names.get(principalKey(r)) ?? '');
  await db.query(
    `INSERT INTO principals (workspace_id, kind, key, display_name)
     SELECT $1, kind, key, name FROM unnest($2::text[], $3::text[], $4::text[]) AS t(kind, key, name)
     ON CONFLICT (workspace_id, kind, key) DO NOTHING`,
    [workspaceId, kinds, keys, displayNames],
  );
  const { rows } = await db.query<{ id: number; kind: string; key: string }>(
    `SELECT p.id, p.kind, p.key FROM principals p
     JOIN unnest($2::text[], $3::text[]) AS t(kind, key) ON p.kind = t.kind AND p.key = t.key
     WHERE p.workspace_id = $1`,
    [workspaceId, kinds, keys],
  );
  for (const row of rows) ids.set(`${row.kind}:${row.key}`, row.id);
  return ids;
}

/** Upserts a connection's source identities and their canonical user principals. */
export async function upsertIdentities(
  db: Queryable,
  workspaceId: string,
  connectionId: string,
  identities: readonly SourceIdentity[],
): Promise<void> {
  if (identities.length === 0) return;
  const names = new Map(identities.map((i) => [principalKey(i.user), i.displayName]));
  const ids = await ensurePrincipals(db, workspaceId, identities.map((i) => i.user), names);
  await db.query(
    `UPDATE principals p SET email = t.email
     FROM unnest($1::int[], $2::text[]) AS t(id, email)
     WHERE p.id = t.id AND t.email IS NOT NULL AND p.email IS DISTINCT FROM t.email`,
    [identities.map((i) => ids.get(principalKey(i.user))), identities.map((i) => i.email)],
  );
  await db.query(
    `INSERT INTO source_identities
       (connection_id, workspace_id, source_user_id, principal_id, display_name, email, identity_kind, active)
     SELECT $1, $2, t.uid, t.pid, t.name, t.email, t.kind, t.active
     FROM unnest($3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::bool[])
       AS t(uid, pid, name, email, kind, active)
     ON CONFLICT (connection_id, source_user_id) DO UPDATE SET
       principal_id = EXCLUDED.principal_id, display_name = EXCLUDED.display_name, email = EXCLUDED.email,
       identity_kind = EXCLUDED.identity_kind, active = EXCLUDED.active, updated_at = now()`,
    [
      connectionId,
      workspaceId,
      identities.map((i) => i.sourceUserId),
      identities.map((i) => ids.get(principalKey(i.user))),
      identities.map((i) => i.displayName),
      identities.map((i) => i.email),
      identities.map((i) => i.kind),
      identities.map((i) => i.active),
    ],
  );
}

/**
 * The source user ids of a connection's identities with the given (lowercased) emails, keyed by
 * lowercased email. For sources whose items name people by address only (Drive's `User`).
 */
export async function sourceUserIdsByEmail(db: Queryable, connectionId: string, emails: readonly string[]): Promise<Map<string, string>> {
  if (emails.length === 0) return new Map();
  const { rows } = await db.query<{ email: string; source_user_id: string }>(
    `SELECT lower(email) AS email, source_user_id FROM source_identities
     WHERE connection_id = $1 AND lower(email) = ANY($2::text[]) ORDER BY source_user_id`,
    [connectionId, emails],
  );
  return new Map(rows.map((r) => [r.email, r.source_user_id]));
}

/** Replaces this connection's view of each group's members with the given complete lists. */
export async function replaceGroupMembers(
  db: Queryable,
  workspaceId: string,
  connectionId: string,
  groups: readonly GroupMembers[],
): Promise<void> {
  const refs = groups.flatMap((g) => [g.group, ...g.members]);
  const names = new Map(groups.map((g) => [principalKey(g.group), g.displayName]));
  const ids = await ensurePrincipals(db, workspaceId, refs, names);
  for (const g of groups) {
    const groupId = ids.get(principalKey(g.group));
    const memberIds = [...new Set(g.members.map((m) => ids.get(principalKey(m))))];
    await db.query(`UPDATE principals SET display_name = $2 WHERE id = $1 AND display_name <> $2`, [groupId, g.displayName]);
    await db.query(
      `DELETE FROM memberships WHERE group_id = $1 AND connection_id = $2 AND NOT (member_id = ANY($3::int[]))`,
      [groupId, connectionId, memberIds],
    );
    await db.query(
      `INSERT INTO memberships (workspace_id, group_id, member_id, connection_id)
       SELECT $1, $2, m, $3 FROM unnest($4::int[]) AS m WHERE m <> $2
       ON CONFLICT DO NOTHING`,
      [workspaceId, groupId, connectionId, memberIds],
    );
  }
}

/**
 * The principal set of a user: the user, every group reachable through memberships (nested,
 * cycle-safe) and the specials they belong to. This is what a document grant is matched against.
 */
export async function principalSet(db: Queryable, userPrincipalId: number): Promise<number[]> {
  const { rows } = await db.query<{ id: number }>(
    `WITH RECURSIVE reach(id) AS (
       SELECT $1::int
       UNION
       SELECT m.group_id FROM memberships m JOIN reach r ON m.member_id = r.id
     )
     SELECT id FROM reach`,
    [userPrincipalId],
  );
  return rows.map((r) => r.id).sort((a, b) => a - b);
}

/** A user who can read something, for reports. */
export interface Reader {
  principalId: number;
  key: string;
  displayName: string;
}

/**
 * Every user who can read a document: members of its granted principals, expanded down through
 * nested groups (cycle-safe), including users granted directly.
 */
export async function readersOf(db: Queryable, documentIds: readonly string[]): Promise<Reader[]> {
  const { rows } = await db.query<{ id: number; key: string; display_name: string }>(
    `WITH RECURSIVE down(id) AS (
       SELECT principal_id FROM document_grants
       WHERE document_id = ANY($1::bigint[]) AND (expires_at IS NULL OR expires_at > now())
       UNION
       SELECT m.member_id FROM memberships m JOIN down d ON m.group_id = d.id
     )
     SELECT p.id, p.key, p.display_name FROM down JOIN principals p ON p.id = down.id
     WHERE p.kind = 'user' AND p.active ORDER BY p.display_name, p.key`,
    [documentIds],
  );
  return rows.map((r) => ({ principalId: r.id, key: r.key, displayName: r.display_name }));
}
