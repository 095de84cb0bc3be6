/**
 * Provisioning tokens: the bearer credential an IdP (Okta, Entra) presents to /scim/v2. One
 * workspace per token; shown once at creation; only the SHA-256 is stored (256 random bits make
 * a slow hash pointless), so the table leaks no usable credential.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../../db/pool.ts';

const PREFIX = 'astry_scim_';
/** The token's exact shape: anything else is refused without a database lookup. */
const TOKEN = /^astry_scim_[A-Za-z0-9_-]{43}$/;

/** A new token: `token` is printed once and never stored. */
export interface IssuedToken {
  id: string;
  token: string;
}

/** A token as `astry scim token list` shows it. */
export interface TokenInfo {
  id: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

function hash(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** Issues a token for `workspaceId`, labelled `name` (e.g. "okta"). */
export async function createScimToken(db: Queryable, workspaceId: string, name: string): Promise<IssuedToken> {
  const token = `${PREFIX}${randomBytes(32).toString('base64url')}`;
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO scim_tokens (workspace_id, name, token_hash) VALUES ($1, $2, $3) RETURNING id`,
    [workspaceId, name, hash(token)],
  );
  const id = rows[0]?.id;
  if (id === undefined) throw new Error('token insert returned no id');
  return { id, token };
}

/** The workspace a live (unrevoked) token belongs to, or undefined. Records use at most once a minute. */
export async function verifyScimToken(db: Queryable, token: string): Promise<{ tokenId: string; workspaceId: string } | undefined> {
  if (!TOKEN.test(token)) return undefined;
  const { rows } = await db.query<{ id: string; workspace_id: string; stale: boolean }>(
    `SELECT id, workspace_id, (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') AS stale
     FROM scim_tokens WHERE token_hash = $1 AND revoked_at IS NULL`,
    [hash(token)],
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  if (row.stale) await db.query(`UPDATE scim_tokens SET last_used_at = now() WHERE id = $1`, [row.id]);
  return { tokenId: row.id, workspaceId: row.workspace_id };
}

export async function listScimTokens(db: Queryable, workspaceId: string): Promise<TokenInfo[]> {
  const { rows } = await db.query<{ id: string; name: string; created_at: Date; last_used_at: Date | null; revoked_at: Date | null }>(
    `SELECT id, name, created_at, last_used_at, revoked_at FROM scim_tokens WHERE workspace_id = $1 ORDER BY id`,
    [workspaceId],
  );
  return rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at }));
}

/** Revokes a token of the workspace at once; false if there is no such live token. */
export async function revokeScimToken(db: Queryable, workspaceId: string, id: string): Promise<boolean> {
  if (!/^\d+$/.test(id)) return false;
  const { rowCount } = await db.query(
    `UPDATE scim_tokens SET revoked_at = now() WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL`,
    [workspaceId, id],
  );
  return (rowCount ?? 0) > 0;
}
