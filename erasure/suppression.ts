/**
 * Suppression rules: after an erasure, the next syncs must not import the subject's items again.
 * A rule is the keyed hash of one identifier (erasure/pseudonym.ts), so the table names nobody in
 * clear. Checked twice: the Slack connector leaves the person's messages and mentions out of the
 * documents it renders, and the pipeline refuses any document whose provenance names them.
 */
import type { SourceDocument } from '../connectors/types.ts';
import type { Queryable } from '../db/pool.ts';
import type { KeyProvider } from '../vault/key-provider.ts';
import { keyedHash, pseudonymKey, sourceIdentifier, principalIdentifier } from './pseudonym.ts';

/**
 * Advisory lock class (two-int form, second int = workspace) ordering rule inserts against document
 * stores: a store holds it shared for its transaction, an erasure takes it exclusively to insert its
 * rules. Once the rules are in, every store that could have missed them has committed, so the
 * footprint the erasure computes next sees them, and every later store sees the rules.
 */
const LOCK_CLASS = 0x45524153; // 'ERAS'

/** Where documents are being stored. */
export interface SuppressionTarget {
  workspaceId: string;
  connectionId: string;
}

/**
 * Inserts the rules of an erasure under the exclusive lock; call inside a transaction. `identifiers`
 * are hashed here; `hashes` are already keyed hashes (a subject's pseudonym is the hash of their
 * principal identifier). Returns how many rules the request has.
 */
export async function addSuppressions(
  client: Queryable,
  keys: KeyProvider,
  workspaceId: string,
  requestId: string,
  identifiers: readonly string[],
  prehashed: readonly Buffer[] = [],
): Promise<number> {
  await client.query(`SELECT pg_advisory_xact_lock($1, $2::int)`, [LOCK_CLASS, workspaceId]);
  const key = await pseudonymKey(client, keys, workspaceId);
  const hashes = [...[...new Set(identifiers)].map((id) => keyedHash(key, id)), ...prehashed];
  await client.query(
    `INSERT INTO erasure_suppressions (workspace_id, identifier, request_id)
     SELECT $1, h, $2 FROM unnest($3::bytea[]) AS h ON CONFLICT DO NOTHING`,
    [workspaceId, requestId, hashes],
  );
  const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM erasure_suppressions WHERE request_id = $1`, [requestId]);
  return rows[0]?.n ?? 0;
}

async function anyRules(db: Queryable, workspaceId: string): Promise<boolean> {
  const { rows } = await db.query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM erasure_suppressions WHERE workspace_id = $1) AS any`, [workspaceId]);
  return rows[0]?.any === true;
}

async function sourceOf(db: Queryable, connectionId: string): Promise<string> {
  const { rows } = await db.query<{ source: string }>(`SELECT source FROM connections WHERE id = $1`, [connectionId]);
  const source = rows[0]?.source;
  if (source === undefined) throw new Error(`connection ${connectionId} does not exist`);
  return source;
}

/** Source user id -> the key of the canonical user it resolves to, for the given ids (all when undefined). */
async function principalKeys(db: Queryable, connectionId: string, sourceUserIds?: readonly string[]): Promise<Map<string, string>> {
  const { rows } = await db.query<{ source_user_id: string; key: string }>(
    `SELECT si.source_user_id, p.key FROM source_identities si JOIN principals p ON p.id = si.principal_id
     WHERE si.connection_id = $1 AND ($2::text[] IS NULL OR si.source_user_id = ANY($2::text[]))`,
    [connectionId, sourceUserIds ?? null],
  );
  return new Map(rows.map((r) => [r.source_user_id, r.key]));
}

/** The identifiers a source user id stands for: their account, and the canonical user it resolves to. */
function identifiersOf(source: string, sourceUserId: string, principals: ReadonlyMap<string, string>): string[] {
  const principal = principals.get(sourceUserId);
  return [sourceIdentifier(source, sourceUserId), ...(principal === undefined ? [] : [principalIdentifier(principal)])];
}

/**
 * A predicate over one connection's source user ids, true for suppressed people; undefined when the
 * workspace has no rules (the common case costs one query). For connectors that render documents
 * from parts, e.g. Slack messages (RenderContext.suppressed).
 */
export async function suppressedUsers(db: Queryable, keys: KeyProvider, target: SuppressionTarget): Promise<((sourceUserId: string) => boolean) | undefined> {
  const { rows } = await db.query<{ identifier: Buffer }>(`SELECT identifier FROM erasure_suppressions WHERE workspace_id = $1`, [target.workspaceId]);
  if (rows.length === 0) return undefined;
  const rules = new Set(rows.map((r) => r.identifier.toString('hex')));
  const source = await sourceOf(db, target.connectionId);
  const principals = await principalKeys(db, target.connectionId);
  const key = await pseudonymKey(db, keys, target.workspaceId);
  const memo = new Map<string, boolean>();
  return (sourceUserId) => {
    let hit = memo.get(sourceUserId);
    if (hit === undefined) {
      hit = identifiersOf(source, sourceUserId, principals).some((id) => rules.has(keyedHash(key, id).toString('hex')));
      memo.set(sourceUserId, hit);
    }
    return hit;
  };
}

/**
 * The source ids of the documents whose provenance names a suppressed person. With `lock`, `db` must
 * be a transaction client: the check then holds the erasure lock shared until that transaction ends
 * (see LOCK_CLASS), so a document stored in it can never slip past a concurrent erasure.
 */
export async function suppressedDocuments(
  db: Queryable,
  keys: KeyProvider,
  target: SuppressionTarget,
  docs: readonly Pick<SourceDocument, 'sourceId' | 'subjects'>[],
  opts: { lock?: boolean } = {},
): Promise<Set<string>> {
  const refused = new Set<string>();
  const subjects = [...new Set(docs.flatMap((d) => (d.subjects ?? []).map((s) => s.sourceUserId)))];
  if (subjects.length === 0) return refused;
  if (opts.lock) await db.query(`SELECT pg_advisory_xact_lock_shared($1, $2::int)`, [LOCK_CLASS, target.workspaceId]);
  // A separate statement after the lock: a READ COMMITTED snapshot taken after the wait sees the rules.
  if (!(await anyRules(db, target.workspaceId))) return refused;
  const source = await sourceOf(db, target.connectionId);
  const principals = await principalKeys(db, target.connectionId, subjects);
  const key = await pseudonymKey(db, keys, target.workspaceId);
  const hashes = new Map(subjects.map((uid) => [uid, identifiersOf(source, uid, principals).map((id) => keyedHash(key, id))]));
  const { rows } = await db.query<{ identifier: Buffer }>(
    `SELECT identifier FROM erasure_suppressions WHERE workspace_id = $1 AND identifier = ANY($2::bytea[])`,
    [target.workspaceId, [...hashes.values()].flat()],
  );
  const hit = new Set(rows.map((r) => r.identifier.toString('hex')));
  const suppressedIds = new Set(subjects.filter((uid) => hashes.get(uid)?.some((h) => hit.has(h.toString('hex')))));
  for (const doc of docs) if ((doc.subjects ?? []).some((s) => suppressedIds.has(s.sourceUserId))) refused.add(doc.sourceId);
  return refused;
}
