import type { Queryable } from './pool.ts';

/** A person as the identity provider's directory knows them. */
export interface DirectoryUser {
  email: string;
  displayName: string;
  active: boolean;
}

/**
 * Upserts canonical users (`email:<lowercased>`) with their active flag from the IdP directory —
 * the source of truth for who may ask at all. Used by the demo and tests; production directories are
 * provisioned over SCIM (api/scim, db/scim.ts), which owns the same principals.
 */
export async function upsertDirectoryUsers(db: Queryable, workspaceId: string, users: readonly DirectoryUser[]): Promise<void> {
  await db.query(
    `INSERT INTO principals (workspace_id, kind, key, display_name, email, active)
     SELECT $1, 'user', 'email:' || lower(t.email), t.name, t.email, t.active
     FROM unnest($2::text[], $3::text[], $4::bool[]) AS t(email, name, active)
     ON CONFLICT (workspace_id, kind, key) DO UPDATE SET
       display_name = EXCLUDED.display_name, email = EXCLUDED.email, active = EXCLUDED.active`,
    [workspaceId, users.map((u) => u.email), users.map((u) => u.displayName), users.map((u) => u.active)],
  );
}
