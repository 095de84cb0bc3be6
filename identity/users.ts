import { z } from 'zod';
import type { Queryable } from '../db/pool.ts';
import { IdentityError } from './errors.ts';
import type { VerifiedToken } from './verifier.ts';

/** The canonical Astry user a request runs as. */
export interface ResolvedUser {
  principalId: number;
  /** Lowercased verified email: the principal's key is `email:<email>`. */
  email: string;
  /**
   * The clearance stored from the IdP directory (SCIM attribute on the user, or set on one of the
   * user's groups: the highest wins); when none is stored, the token's `astry_clearance` claim; else 0.
   */
  clearance: number;
  displayName: string;
}

/** The custom claim carrying a user's clearance level, set by the IdP. */
export const CLEARANCE_CLAIM = 'astry_clearance';
/** Highest clearance level, claimed or stored (principals.clearance is a non-negative int4). */
export const MAX_CLEARANCE = 2_147_483_647;

// The IdP is trusted for these claims only because the token's signature was verified.
const IdentityClaims = z.object({
  email: z.string().trim().toLowerCase().pipe(z.email()).optional(),
  email_verified: z.boolean().optional(),
  // Cosmetic only: a malformed name is dropped, not a reason to refuse.
  name: z.string().optional().catch(undefined),
  [CLEARANCE_CLAIM]: z.number().int().min(0).max(MAX_CLEARANCE).optional(),
});

/**
 * Maps a verified token to the workspace's canonical, active user `email:<lowercased email>`.
 * Every refusal is IdentityError('FORBIDDEN') with the same public message, so a caller cannot tell
 * an unknown user from a deactivated one; `reason` says which for the logs.
 */
export async function resolveUser(db: Queryable, workspaceId: string, token: VerifiedToken): Promise<ResolvedUser> {
  const parsed = IdentityClaims.safeParse(token.claims);
  if (!parsed.success) {
    throw new IdentityError('FORBIDDEN', `malformed identity claims: ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`);
  }
  const claims = parsed.data;
  if (claims.email === undefined) throw new IdentityError('FORBIDDEN', `token of sub ${token.subject} carries no email`);
  // Absent email_verified is accepted (many IdPs only send verified addresses); an explicit false is not.
  if (claims.email_verified === false) throw new IdentityError('FORBIDDEN', `email of sub ${token.subject} is not verified`);

  // One round trip: the user and the highest clearance stored on them or any group they reach.
  const { rows } = await db.query<{ id: number; display_name: string; active: boolean; clearance: number | null }>(
    `WITH RECURSIVE u AS (
       SELECT id, display_name, active FROM principals WHERE workspace_id = $1 AND kind = 'user' AND key = $2
     ), reach(id) AS (
       SELECT id FROM u
       UNION
       SELECT m.group_id FROM memberships m JOIN reach r ON m.member_id = r.id
     )
     SELECT u.id, u.display_name, u.active, (SELECT max(p.clearance) FROM reach JOIN principals p ON p.id = reach.id) AS clearance FROM u`,
    [workspaceId, `email:${claims.email}`],
  );
  const row = rows[0];
  if (row === undefined) throw new IdentityError('FORBIDDEN', `no user principal for ${claims.email} in workspace ${workspaceId}`);
  if (!row.active) throw new IdentityError('FORBIDDEN', `user principal ${row.id} (${claims.email}) is deactivated`, { principalId: row.id });
  return {
    principalId: row.id,
    email: claims.email,
    clearance: row.clearance ?? claims[CLEARANCE_CLAIM] ?? 0,
    displayName: row.display_name || claims.name || claims.email,
  };
}
