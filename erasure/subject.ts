/** Who an erasure request names: a canonical user key or email, or a person's account in a source. */
import { AstryError } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import type { KeyProvider } from '../vault/key-provider.ts';
import { pseudonymKey, subjectPseudonym } from './pseudonym.ts';

/** A resolved subject. `principalId` is null when the directory does not (or no longer) know them. */
export interface ResolvedSubject {
  principalKey: string;
  principalId: number | null;
  pseudonym: string;
}

const EMAIL = /^[^\s@:]+@[^\s@]+$/;

/**
 * Accepts `gina@ex.com`, `email:gina@ex.com`, any canonical user key (`slack:T1:U2`), or a source
 * account `<source>:<user id>` / `<source>:<tenant>:<user id>` (e.g. `slack:U0GINA`), which resolves
 * to the canonical user it is linked to. An unknown email still yields its pseudonym (a past erasure
 * may have named it); anything else unknown is NOT_FOUND.
 */
export async function resolveSubject(db: Queryable, keys: KeyProvider, workspaceId: string, input: string): Promise<ResolvedSubject> {
  const text = input.trim();
  const email = EMAIL.test(text) ? `email:${text.toLowerCase()}` : text.startsWith('email:') ? `email:${text.slice(6).toLowerCase()}` : undefined;
  const candidate = email ?? text;
  const key = await pseudonymKey(db, keys, workspaceId);
  const direct = await db.query<{ id: number; key: string }>(
    `SELECT id, key FROM principals WHERE workspace_id = $1 AND kind = 'user' AND key = $2`,
    [workspaceId, candidate],
  );
  const principal = direct.rows[0];
  if (principal) return { principalKey: principal.key, principalId: principal.id, pseudonym: subjectPseudonym(key, principal.key) };
  if (email !== undefined) return { principalKey: email, principalId: null, pseudonym: subjectPseudonym(key, email) };

  const parts = text.split(':');
  if (parts.length === 2 || parts.length === 3) {
    const { rows } = await db.query<{ id: number; key: string }>(
      `SELECT DISTINCT p.id, p.key FROM source_identities si
       JOIN connections c ON c.id = si.connection_id JOIN principals p ON p.id = si.principal_id
       WHERE si.workspace_id = $1 AND c.source = $2 AND si.source_user_id = $3`,
      [workspaceId, parts[0], parts.at(-1)],
    );
    if (rows.length > 1) throw new AstryError('CONFLICT', `${text} names accounts of ${rows.length} different people; name the person by email`);
    const found = rows[0];
    if (found) return { principalKey: found.key, principalId: found.id, pseudonym: subjectPseudonym(key, found.key) };
  }
  throw new AstryError('NOT_FOUND', `no person ${text} in this workspace`);
}

/** The identifiers a suppression rule must cover: the canonical user and every linked source account. */
export async function subjectIdentifiers(db: Queryable, workspaceId: string, principalId: number): Promise<{ principalKey: string; accounts: { source: string; sourceUserId: string }[] }> {
  const { rows } = await db.query<{ key: string; source: string | null; source_user_id: string | null }>(
    `SELECT p.key, c.source, si.source_user_id FROM principals p
     LEFT JOIN source_identities si ON si.principal_id = p.id
     LEFT JOIN connections c ON c.id = si.connection_id
     WHERE p.id = $1 AND p.workspace_id = $2`,
    [principalId, workspaceId],
  );
  const first = rows[0];
  if (!first) throw new AstryError('NOT_FOUND', `principal ${principalId} does not exist`);
  const accounts = rows.flatMap((r) => (r.source !== null && r.source_user_id !== null ? [{ source: r.source, sourceUserId: r.source_user_id }] : []));
  return { principalKey: first.key, accounts };
}
