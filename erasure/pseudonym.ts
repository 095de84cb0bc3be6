/**
 * Pseudonyms: HMAC-SHA256 under a per-workspace key wrapped by the KEK. A subject's pseudonym names
 * them in erasure requests, bundles, subject keys and suppression rules; without the key (inside
 * Astry only) a guessed email cannot be confirmed against a bundle, which a plain hash would allow.
 */
import { createHmac } from 'node:crypto';
import type { Queryable } from '../db/pool.ts';
import { newDataKey } from '../vault/envelope.ts';
import type { KeyProvider } from '../vault/key-provider.ts';
import { pseudonymKeyContext as context } from '../vault/wrap-contexts.ts';

/** Unwrapped keys by wrapped bytes: a workspace-wide secret like the KEK, not a per-person one. */
const unwrapped = new Map<string, Buffer>();

/** The workspace's pseudonym key, created on first use (concurrent creators agree on one). */
export async function pseudonymKey(db: Queryable, keys: KeyProvider, workspaceId: string): Promise<Buffer> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const { rows } = await db.query<{ wrapped_key: Buffer; kek_id: string }>(
      `SELECT wrapped_key, kek_id FROM pseudonym_keys WHERE workspace_id = $1`,
      [workspaceId],
    );
    const row = rows[0];
    if (row) {
      const cacheKey = `${row.kek_id}/${workspaceId}/${row.wrapped_key.toString('base64')}`;
      let key = unwrapped.get(cacheKey);
      if (!key) {
        key = await keys.unwrap(row.wrapped_key, row.kek_id, context(workspaceId));
        unwrapped.set(cacheKey, key);
      }
      return key;
    }
    const fresh = newDataKey();
    try {
      const { wrapped, keyId } = await keys.wrap(fresh, context(workspaceId));
      await db.query(
        `INSERT INTO pseudonym_keys (workspace_id, wrapped_key, kek_id) VALUES ($1, $2, $3) ON CONFLICT (workspace_id) DO NOTHING`,
        [workspaceId, wrapped, keyId],
      );
    } finally {
      fresh.fill(0);
    }
  }
  throw new Error(`pseudonym key of workspace ${workspaceId} could not be created`);
}

/** HMAC-SHA256 of an identifier, raw (suppression rules store these bytes). */
export function keyedHash(key: Buffer, identifier: string): Buffer {
  return createHmac('sha256', key).update(identifier, 'utf8').digest();
}

/** The identifier of a canonical user in pseudonyms and rules: `principal:<principal key>`. */
export const principalIdentifier = (principalKey: string): string => `principal:${principalKey}`;

/** The identifier of a person's account in a source: `<source>:<source user id>`, e.g. `slack:U0BOB`. */
export const sourceIdentifier = (source: string, sourceUserId: string): string => `${source}:${sourceUserId}`;

/** A subject's pseudonym: hex HMAC of their principal identifier. */
export function subjectPseudonym(key: Buffer, principalKey: string): string {
  return keyedHash(key, principalIdentifier(principalKey)).toString('hex');
}
