/**
 * Per-subject keys: the personal fields of a person's audit entries (who asked, a hash of the
 * question, what was cited) are sealed under a data key of their own, wrapped by the KEK. Erasure
 * destroys the wrapped key (crypto-shredding): the entries stay in the hash chain, which covers the
 * sealed bytes and so still verifies, but nobody can open them again. Keys are never cached in
 * memory: a destroyed key must be gone everywhere at once.
 */
import { randomUUID } from 'node:crypto';
import type { SealedPersonal } from '../audit/entry.ts';
import { canonicalJson } from '../audit/canonical.ts';
import { withTimeout } from '../audit/store.ts';
import { AstryError } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import { decrypt, encrypt, newDataKey, packSealed, unpackSealed, type VaultAad } from '../vault/envelope.ts';
import type { KeyProvider } from '../vault/key-provider.ts';
import { subjectKeyContext as wrapContext } from '../vault/wrap-contexts.ts';
import { keyedHash, pseudonymKey, subjectPseudonym } from './pseudonym.ts';

const aad = (workspaceId: string, keyId: string): VaultAad => ({ workspaceId, documentId: `subject-key:${keyId}`, version: 1, part: 'audit-personal' });

/** The pseudonym of a canonical user, by principal id; undefined when no such user exists. */
export async function principalPseudonym(db: Queryable, keys: KeyProvider, workspaceId: string, principalId: number): Promise<string | undefined> {
  const { rows } = await db.query<{ key: string }>(`SELECT key FROM principals WHERE id = $1 AND workspace_id = $2`, [principalId, workspaceId]);
  const key = rows[0]?.key;
  return key === undefined ? undefined : subjectPseudonym(await pseudonymKey(db, keys, workspaceId), key);
}

/** The subject's live key, created on first use (concurrent creators agree on one). The caller zeroes `dek`. */
async function liveKey(db: Queryable, keys: KeyProvider, workspaceId: string, pseudonym: string): Promise<{ id: string; dek: Buffer }> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const { rows } = await db.query<{ id: string; wrapped_key: Buffer; kek_id: string }>(
      `SELECT id, wrapped_key, kek_id FROM subject_keys WHERE workspace_id = $1 AND subject = $2 AND destroyed_at IS NULL`,
      [workspaceId, pseudonym],
    );
    const row = rows[0];
    if (row) return { id: row.id, dek: await keys.unwrap(row.wrapped_key, row.kek_id, wrapContext(workspaceId, row.id)) };
    const id = `sk_${randomUUID()}`;
    const dek = newDataKey();
    try {
      const { wrapped, keyId } = await keys.wrap(dek, wrapContext(workspaceId, id));
      await db.query(
        `INSERT INTO subject_keys (id, workspace_id, subject, wrapped_key, kek_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (workspace_id, subject) WHERE destroyed_at IS NULL DO NOTHING`,
        [id, workspaceId, pseudonym, wrapped, keyId],
      );
    } finally {
      dek.fill(0);
    }
  }
  throw new Error('subject key could not be created');
}

/** Seals `fields` (plain JSON) under the subject's key. */
export async function sealPersonal(
  db: Queryable,
  keys: KeyProvider,
  workspaceId: string,
  pseudonym: string,
  fields: Record<string, unknown>,
): Promise<SealedPersonal> {
  const { id, dek } = await liveKey(db, keys, workspaceId, pseudonym);
  try {
    const sealed = packSealed(encrypt(Buffer.from(canonicalJson(fields), 'utf8'), aad(workspaceId, id), dek));
    return { keyId: id, sealed: sealed.toString('base64') };
  } finally {
    dek.fill(0);
  }
}

/** The personal fields of an entry, or undefined once the subject's key is destroyed. Tampering is DECRYPT_FAILED. */
export async function openPersonal(db: Queryable, keys: KeyProvider, workspaceId: string, personal: SealedPersonal): Promise<Record<string, unknown> | undefined> {
  const { rows } = await db.query<{ wrapped_key: Buffer | null; kek_id: string | null }>(
    `SELECT wrapped_key, kek_id FROM subject_keys WHERE id = $1 AND workspace_id = $2`,
    [personal.keyId, workspaceId],
  );
  const row = rows[0];
  if (!row?.wrapped_key || !row.kek_id) return undefined;
  const dek = await keys.unwrap(row.wrapped_key, row.kek_id, wrapContext(workspaceId, personal.keyId));
  try {
    const parsed: unknown = JSON.parse(decrypt(unpackSealed(Buffer.from(personal.sealed, 'base64')), aad(workspaceId, personal.keyId), dek).toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new AstryError('DECRYPT_FAILED', 'personal fields have an unexpected shape');
    return Object.fromEntries(Object.entries(parsed));
  } finally {
    dek.fill(0);
  }
}

/** How long an audit event waits for its subject key before the personal fields are withheld, in ms. */
const PERSONAL_TIMEOUT_MS = 2000;

/**
 * The actor and sealed personal fields of a user's audit event: the clear `actor` names only the
 * subject key. Never throws: if the key cannot be had within 2 s (database down), the personal fields
 * are withheld rather than written in clear, and the event is still recorded (the audit log spools).
 */
export async function personalAuditFields(
  db: Queryable,
  keys: KeyProvider,
  workspaceId: string,
  principalId: number,
  fields: Record<string, unknown>,
): Promise<{ actor: string; personal?: SealedPersonal }> {
  try {
    const seal = async (): Promise<{ actor: string; personal?: SealedPersonal }> => {
      const pseudonym = await principalPseudonym(db, keys, workspaceId, principalId);
      if (pseudonym === undefined) return { actor: 'personal-withheld:unknown-user' };
      const personal = await sealPersonal(db, keys, workspaceId, pseudonym, fields);
      return { actor: `subject-key:${personal.keyId}`, personal };
    };
    return await withTimeout(seal(), PERSONAL_TIMEOUT_MS, 'subject key');
  } catch (err) {
    console.warn('audit: personal fields withheld (subject key unavailable)', err);
    return { actor: 'personal-withheld:key-unavailable' };
  }
}

/**
 * The actor of an audit event about someone who is no canonical user (an unknown IdP subject, an
 * unlinked Slack account): `pseudonym:<hex HMAC of identifier>` under the workspace's pseudonym key,
 * which an admin inside Astry can recompute for a given identifier (erasure/pseudonym.ts) and nobody
 * else can. Never throws: without the key within 2 s the actor is withheld, not written in clear.
 */
export async function pseudonymousActor(db: Queryable, keys: KeyProvider, workspaceId: string, identifier: string): Promise<string> {
  try {
    const key = await withTimeout(pseudonymKey(db, keys, workspaceId), PERSONAL_TIMEOUT_MS, 'pseudonym key');
    return `pseudonym:${keyedHash(key, identifier).toString('hex')}`;
  } catch (err) {
    console.warn('audit: actor withheld (pseudonym key unavailable)', err);
    return 'personal-withheld:pseudonym-unavailable';
  }
}

/** Who a refused request came from: a canonical user, or only an identifier (e.g. `slack:U0XENA`) for someone who is none. */
export type RefusedAsker = { principalId: number } | { identifier: string };

/**
 * The actor and sealed personal fields of a refusal's audit event, naming no one in clear: a canonical
 * user's `fields` are sealed under their subject key (so erasure shreds them), anyone else is a keyed
 * pseudonym and `fields` are dropped (there is no key of theirs to seal them under). Never throws.
 */
export async function refusalAuditFields(
  db: Queryable,
  keys: KeyProvider,
  workspaceId: string,
  asker: RefusedAsker,
  fields: Record<string, unknown>,
): Promise<{ actor: string; personal?: SealedPersonal }> {
  if ('principalId' in asker) return personalAuditFields(db, keys, workspaceId, asker.principalId, fields);
  return { actor: await pseudonymousActor(db, keys, workspaceId, asker.identifier) };
}

/** Destroys the subject's live keys (call inside the erasure's transaction); returns the ids destroyed now. */
export async function destroySubjectKeys(db: Queryable, workspaceId: string, pseudonym: string, requestId: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE subject_keys SET wrapped_key = NULL, kek_id = NULL, subject = NULL, destroyed_at = now(), destroyed_by = $3
     WHERE workspace_id = $1 AND subject = $2 AND destroyed_at IS NULL RETURNING id`,
    [workspaceId, pseudonym, requestId],
  );
  return rows.map((r) => r.id).sort();
}
