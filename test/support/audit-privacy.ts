import assert from 'node:assert/strict';
import { AuditEntrySchema, type AuditEntry } from '../../audit/entry.ts';
import type { Queryable } from '../../db/pool.ts';
import { openPersonal, principalPseudonym } from '../../erasure/personal.ts';
import { keyedHash, pseudonymKey } from '../../erasure/pseudonym.ts';
import type { KeyProvider } from '../../vault/key-provider.ts';

/** Audit entries matching a WHERE clause over `entry`, in chain order, validated. */
export async function auditEntries(db: Queryable, where: string, params: unknown[] = []): Promise<AuditEntry[]> {
  const { rows } = await db.query<{ entry: unknown }>(`SELECT entry FROM audit_log WHERE ${where} ORDER BY seq`, params);
  return rows.map((r) => AuditEntrySchema.parse(r.entry));
}

/**
 * Asserts no clear part of `entry` (everything but the sealed bytes) names the person: none of
 * `identifiers` occurs anywhere in it, and no `principalIds` as a whole number. The entry's own id,
 * time and request id are left out of the number check (their digits are not anyone's id).
 */
export function assertNamesNoOne(entry: AuditEntry, identifiers: string[], principalIds: number[] = []): void {
  const clear = JSON.stringify({ ...entry, personal: entry.personal ? { keyId: entry.personal.keyId } : undefined });
  for (const id of identifiers) assert.ok(!clear.includes(id), `${id} in clear in ${clear}`);
  const { id: _id, at: _at, details, ...rest } = entry;
  const { requestId: _requestId, ...clearDetails } = details ?? {};
  const numbers = JSON.stringify({ ...rest, details: clearDetails, personal: undefined });
  for (const pid of principalIds) assert.doesNotMatch(numbers, new RegExp(`(?<![\\w.])${pid}(?![\\w.])`), `principal ${pid} in clear in ${numbers}`);
}

/** Opens a refusal entry sealed under `principalId`'s key: asserts the actor names only the key, and that it is theirs (so their erasure shreds it). */
export async function openSealedRefusal(db: Queryable, keys: KeyProvider, entry: AuditEntry, principalId: number): Promise<Record<string, unknown>> {
  assert.match(entry.actor, /^subject-key:sk_[0-9a-f-]+$/);
  assert.ok(entry.personal, 'personal fields are sealed');
  assert.equal(entry.actor, `subject-key:${entry.personal.keyId}`);
  const { rows } = await db.query<{ subject: string }>(`SELECT subject FROM subject_keys WHERE id = $1`, [entry.personal.keyId]);
  assert.equal(rows[0]?.subject, await principalPseudonym(db, keys, entry.workspaceId, principalId), 'sealed under the person\'s own subject key');
  const fields = await openPersonal(db, keys, entry.workspaceId, entry.personal);
  assert.ok(fields, 'the subject key is live');
  return fields;
}

/** The actor an admin recomputes for someone who is no canonical user, from their identifier (e.g. `oidc:<sub>`). */
export async function pseudonymActorOf(db: Queryable, keys: KeyProvider, workspaceId: string, identifier: string): Promise<string> {
  return `pseudonym:${keyedHash(await pseudonymKey(db, keys, workspaceId), identifier).toString('hex')}`;
}
