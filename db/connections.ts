import { z } from 'zod';
import { AstryError } from '../core/errors.ts';
import type { KeyProvider } from '../vault/key-provider.ts';
import { connectionKeyContext } from '../vault/wrap-contexts.ts';
import { decrypt, encrypt, newDataKey, packSealed, unpackSealed } from '../vault/envelope.ts';
import type { Queryable } from './pool.ts';
import type { RunTotals } from './runs.ts';

/** The sources Astry connects to. */
export const SOURCES = ['slack', 'graph', 'drive'] as const;
export type SourceKind = (typeof SOURCES)[number];

/** Non-secret settings of a Slack connection. */
export const SlackConfigSchema = z.object({ apiUrl: z.string().url(), teamId: z.string().optional() });
export type SlackConfig = z.infer<typeof SlackConfigSchema>;

/**
 * A connected source. `config` holds non-secret settings, validated by each source's activities
 * with its own schema (e.g. SlackConfigSchema); the credentials are sealed separately.
 */
export interface Connection {
  id: string;
  workspaceId: string;
  source: SourceKind;
  name: string;
  config: Record<string, unknown>;
  status: 'active' | 'paused';
}

const RowSchema = z.object({
  id: z.string(),
  workspace_id: z.string(),
  source: z.enum(SOURCES),
  name: z.string(),
  config: z.record(z.string(), z.unknown()),
  status: z.enum(['active', 'paused']),
});

function toConnection(row: unknown): Connection {
  const r = RowSchema.parse(row);
  return { id: r.id, workspaceId: r.workspace_id, source: r.source, name: r.name, config: r.config, status: r.status };
}

/** The id of the named workspace, created on first use. */
export async function ensureWorkspace(db: Queryable, name: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO workspaces (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id`,
    [name],
  );
  const id = rows[0]?.id;
  if (!id) throw new Error(`workspace ${name} was not created`);
  return id;
}

const secretAad = (workspaceId: string, name: string) => ({ workspaceId, documentId: `connection:${name}`, version: 1, part: 'secret' });

/**
 * Creates a connection; the credentials (`token`: a bearer token, or JSON for app credentials) are
 * sealed under a fresh data key wrapped by the KEK.
 */
export async function createConnection(
  db: Queryable,
  keys: KeyProvider,
  input: { workspaceId: string; name: string; source: SourceKind; config: Record<string, unknown>; token: string },
): Promise<Connection> {
  const dek = newDataKey();
  try {
    const sealed = packSealed(encrypt(Buffer.from(input.token, 'utf8'), secretAad(input.workspaceId, input.name), dek));
    const { wrapped, keyId } = await keys.wrap(dek, connectionKeyContext(input.workspaceId, input.name));
    const { rows } = await db.query(
      `INSERT INTO connections (workspace_id, source, name, config, sealed_secret, wrapped_dek, kek_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (workspace_id, name) DO NOTHING
       RETURNING id, workspace_id, source, name, config, status`,
      [input.workspaceId, input.source, input.name, input.config, sealed, wrapped, keyId],
    );
    if (rows.length === 0) throw new AstryError('CONFLICT', `a connection named "${input.name}" already exists`);
    return toConnection(rows[0]);
  } finally {
    dek.fill(0);
  }
}

/** What a rotation did: which connection, and when (connections.secret_rotated_at). */
export interface SecretRotation {
  connectionId: string;
  name: string;
  source: SourceKind;
  rotatedAt: Date;
}

/**
 * Replaces a connection's credentials: the new secret is sealed under a fresh data key and stored with
 * its wrapped key in one UPDATE, so the old sealed value and data key are gone from the row afterwards.
 * An unknown connection (or another workspace's) is NOT_FOUND; an empty secret is CONFIG_INVALID.
 */
export async function rotateConnectionSecret(
  db: Queryable,
  keys: KeyProvider,
  workspaceId: string,
  connectionId: string,
  newSecret: string,
): Promise<SecretRotation> {
  if (newSecret.trim() === '') throw new AstryError('CONFIG_INVALID', 'the new secret is empty');
  // The AAD and wrap context name the connection, so its name is read first; the UPDATE only lands
  // on that same row (a connection is never renamed, but a deleted one must not be resurrected).
  const connection = await getConnection(db, connectionId, workspaceId);
  const dek = newDataKey();
  try {
    const sealed = packSealed(encrypt(Buffer.from(newSecret, 'utf8'), secretAad(workspaceId, connection.name), dek));
    const { wrapped, keyId } = await keys.wrap(dek, connectionKeyContext(workspaceId, connection.name));
    const { rows } = await db.query<{ rotated_at: Date }>(
      `UPDATE connections SET sealed_secret = $4, wrapped_dek = $5, kek_id = $6, secret_rotated_at = now()
       WHERE id = $1 AND workspace_id = $2 AND name = $3
       RETURNING secret_rotated_at AS rotated_at`,
      [connection.id, workspaceId, connection.name, sealed, wrapped, keyId],
    );
    const rotatedAt = rows[0]?.rotated_at;
    if (!(rotatedAt instanceof Date)) throw new AstryError('NOT_FOUND', `no connection "${connectionId}"`);
    return { connectionId: connection.id, name: connection.name, source: connection.source, rotatedAt };
  } finally {
    dek.fill(0);
  }
}

/**
 * The source account whose principals the connection has synced: the `<team>` of Slack's
 * `slack:<team>:…` groups, the `<customer>` of Drive's `drive:<customer>:…`, the `<tenant>` of Graph's
 * `graph:<tenant>:…` (each connector's acl.ts). Null before its first sync.
 */
export async function syncedAccount(db: Queryable, connection: Pick<Connection, 'id' | 'source'>): Promise<string | null> {
  const { rows } = await db.query<{ account: string }>(
    `SELECT split_part(p.key, ':', 2) AS account FROM memberships m JOIN principals p ON p.id = m.group_id
     WHERE m.connection_id = $1 AND p.key LIKE $2 LIMIT 1`,
    [connection.id, `${connection.source}:%:%`],
  );
  return rows[0]?.account ?? null;
}

/** The decrypted token of a connection (only activities call this, never the CLI output). */
export async function connectionToken(db: Queryable, keys: KeyProvider, connectionId: string): Promise<string> {
  const { rows } = await db.query<{ workspace_id: string; name: string; sealed_secret: Buffer; wrapped_dek: Buffer; kek_id: string }>(
    `SELECT workspace_id, name, sealed_secret, wrapped_dek, kek_id FROM connections WHERE id = $1`,
    [connectionId],
  );
  const row = rows[0];
  if (!row) throw new AstryError('NOT_FOUND', `connection ${connectionId} not found`);
  const dek = await keys.unwrap(row.wrapped_dek, row.kek_id, connectionKeyContext(row.workspace_id, row.name));
  try {
    return decrypt(unpackSealed(row.sealed_secret), secretAad(row.workspace_id, row.name), dek).toString('utf8');
  } finally {
    dek.fill(0);
  }
}

/** A connection by id (all digits) or name; with `workspaceId`, only that workspace's (another's is NOT_FOUND too). */
export async function getConnection(db: Queryable, idOrName: string, workspaceId?: string): Promise<Connection> {
  // No connection id has 19 digits; a longer string could overflow bigint: not found, not a Postgres error.
  if (/^\d{19,}$/.test(idOrName)) throw new AstryError('NOT_FOUND', `no connection "${idOrName}"`);
  const byId = /^\d+$/.test(idOrName);
  const { rows } = await db.query(
    `SELECT id, workspace_id, source, name, config, status FROM connections
     WHERE ${byId ? 'id = $1::bigint' : 'name = $1'} AND ($2::bigint IS NULL OR workspace_id = $2)`,
    [idOrName, workspaceId ?? null],
  );
  if (rows.length !== 1) throw new AstryError('NOT_FOUND', `no connection "${idOrName}"`);
  return toConnection(rows[0]);
}

export async function setConnectionStatus(db: Queryable, connectionId: string, status: 'active' | 'paused'): Promise<void> {
  await db.query(`UPDATE connections SET status = $2 WHERE id = $1`, [connectionId, status]);
}

/** A finished sync run of a connection: what `astry connections` and GET /v1/admin/connections show. */
export interface FinishedRun extends RunTotals {
  workflowId: string;
  status: 'succeeded' | 'failed';
  startedAt: Date;
  finishedAt: Date;
  /** Why the run as a whole failed, when it did. */
  failure: string | null;
}

/** One connection and its sync health at a glance. */
export interface ConnectionSummary {
  id: string;
  name: string;
  source: SourceKind;
  status: 'active' | 'paused';
  documents: number;
  /** The most recent run that finished (a run in progress is Temporal's to report). */
  lastRun: FinishedRun | null;
}

const SummaryRowSchema = z.object({
  id: z.string(),
  name: z.string(),
  source: z.enum(SOURCES),
  status: z.enum(['active', 'paused']),
  documents: z.coerce.number(),
  workflow_id: z.string().nullable(),
  run_status: z.enum(['succeeded', 'failed']).nullable(),
  started_at: z.date().nullable(),
  finished_at: z.date().nullable(),
  docs_indexed: z.number().nullable(),
  docs_unchanged: z.number().nullable(),
  docs_acl_updated: z.number().nullable(),
  docs_deleted: z.number().nullable(),
  chunks_written: z.number().nullable(),
  errors: z.number().nullable(),
  failure: z.string().nullable(),
});

/** The workspace's connections with their last finished run, by id. */
export async function listConnections(db: Queryable, workspaceId: string): Promise<ConnectionSummary[]> {
  const { rows } = await db.query(
    `SELECT c.id, c.name, c.source, c.status,
            (SELECT count(*) FROM documents d WHERE d.connection_id = c.id) AS documents,
            r.workflow_id, r.status AS run_status, r.started_at, r.finished_at, r.docs_indexed, r.docs_unchanged,
            r.docs_acl_updated, r.docs_deleted, r.chunks_written, r.errors, r.failure
     FROM connections c
     LEFT JOIN LATERAL (SELECT * FROM sync_runs s WHERE s.connection_id = c.id AND s.status <> 'running'
                        ORDER BY s.started_at DESC LIMIT 1) r ON true
     WHERE c.workspace_id = $1 ORDER BY c.id`,
    [workspaceId],
  );
  return rows.map((row) => {
    const r = SummaryRowSchema.parse(row);
    const lastRun: FinishedRun | null = r.workflow_id === null || r.run_status === null || r.started_at === null || r.finished_at === null ? null : {
      workflowId: r.workflow_id, status: r.run_status, startedAt: r.started_at, finishedAt: r.finished_at,
      indexed: r.docs_indexed ?? 0, unchanged: r.docs_unchanged ?? 0, aclUpdated: r.docs_acl_updated ?? 0,
      deleted: r.docs_deleted ?? 0, chunks: r.chunks_written ?? 0, errors: r.errors ?? 0, failure: r.failure,
    };
    return { id: r.id, name: r.name, source: r.source, status: r.status, documents: r.documents, lastRun };
  });
}
