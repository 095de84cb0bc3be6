/**
 * Persistence of SCIM provisioning. A SCIM User is a canonical user principal (key
 * `email:<lowercased>`, active flag, clearance) plus the resource as last written; a SCIM Group is
 * a group principal (key `scim:group:<id>`) whose members are memberships with connection_id NULL.
 * Callers run the writes inside one transaction (db/pool.ts inTransaction).
 */
import { z } from 'zod';
import { AstryError } from '../core/errors.ts';
import type { Queryable } from './pool.ts';

export type ScimResourceType = 'User' | 'Group';

/** A provisioned resource with its principal's state. */
export interface ScimRecord {
  id: string;
  resourceType: ScimResourceType;
  principalId: number;
  /** userName (User) or displayName (Group). */
  name: string;
  externalId: string | null;
  /** The resource as last written, minus id, meta, members, groups, active and password. */
  attributes: Record<string, unknown>;
  active: boolean;
  clearance: number | null;
  createdAt: Date;
  updatedAt: Date;
}

/** The stored part of a resource. */
export interface ScimWrite {
  name: string;
  externalId: string | null;
  attributes: Record<string, unknown>;
}

/** What a SCIM User sets on its canonical principal. */
export interface UserPrincipal {
  /** `email:<lowercased work email, else primary email, else userName>`. */
  key: string;
  displayName: string;
  email: string | null;
  active: boolean;
  clearance: number | null;
}

/** A member of a group, or a group of a user, as SCIM shows it. */
export interface ScimRef {
  id: string;
  resourceType: ScimResourceType;
  name: string;
}

const Row = z.object({
  id: z.string(),
  resource_type: z.enum(['User', 'Group']),
  principal_id: z.number().int(),
  name: z.string(),
  external_id: z.string().nullable(),
  attributes: z.record(z.string(), z.unknown()),
  active: z.boolean(),
  clearance: z.number().int().nullable(),
  created_at: z.date(),
  updated_at: z.date(),
});

function record(row: unknown): ScimRecord {
  const r = Row.parse(row);
  return {
    id: r.id, resourceType: r.resource_type, principalId: r.principal_id, name: r.name, externalId: r.external_id,
    attributes: r.attributes, active: r.active, clearance: r.clearance, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

const COLUMNS = 'r.id, r.resource_type, r.principal_id, r.name, r.external_id, r.attributes, p.active, p.clearance, r.created_at, r.updated_at';
const FROM = 'FROM scim_resources r JOIN principals p ON p.id = r.principal_id';
const SELECT = `SELECT ${COLUMNS} ${FROM}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One resource of the workspace by SCIM id; `lock` takes a row lock for a read-modify-write. */
export async function findScimResource(
  db: Queryable, workspaceId: string, type: ScimResourceType, id: string, opts: { lock?: boolean } = {},
): Promise<ScimRecord | undefined> {
  if (!UUID.test(id)) return undefined;
  const { rows } = await db.query(
    `${SELECT} WHERE r.workspace_id = $1 AND r.resource_type = $2 AND r.id = $3${opts.lock ? ' FOR UPDATE OF r' : ''}`,
    [workspaceId, type, id],
  );
  return rows[0] === undefined ? undefined : record(rows[0]);
}

/** A page of a list query. */
export interface ScimPage {
  /** SQL condition over `r` (scim_resources) and `p` (principals); gets the params array holding $1 (workspace) and $2 (type). */
  where?: (params: unknown[]) => string;
  /** 0-based offset and page size (0: count only). */
  offset: number;
  limit: number;
}

/** Resources matching a condition, in creation order (stable across pages), and how many match in all. */
export async function listScimResources(db: Queryable, workspaceId: string, type: ScimResourceType, page: ScimPage): Promise<{ total: number; records: ScimRecord[] }> {
  const params: unknown[] = [workspaceId, type];
  const condition = page.where ? ` AND (${page.where(params)})` : '';
  const base = `WHERE r.workspace_id = $1 AND r.resource_type = $2${condition}`;
  if (page.limit > 0) {
    // One round trip for a page and its total; a second only for a page past the end.
    const paged = [...params, page.limit, page.offset];
    const { rows } = await db.query<Record<string, unknown> & { total: string }>(
      `SELECT count(*) OVER () AS total, ${COLUMNS} ${FROM} ${base} ORDER BY r.seq LIMIT $${paged.length - 1} OFFSET $${paged.length}`,
      paged,
    );
    if (rows.length > 0 || page.offset === 0) return { total: Number(rows[0]?.total ?? 0), records: rows.map(record) };
  }
  const count = await db.query<{ n: string }>(`SELECT count(*) AS n ${FROM} ${base}`, params);
  return { total: Number(count.rows[0]?.n ?? 0), records: [] };
}

async function assertUserNameFree(db: Queryable, workspaceId: string, userName: string, exceptId?: string): Promise<void> {
  const { rows } = await db.query(
    `SELECT 1 FROM scim_resources WHERE workspace_id = $1 AND resource_type = 'User' AND lower(name) = lower($2) AND id IS DISTINCT FROM $3::uuid`,
    [workspaceId, userName, exceptId ?? null],
  );
  if (rows.length > 0) throw new AstryError('CONFLICT', `userName ${JSON.stringify(userName)} is already provisioned`);
}

/**
 * The principal a SCIM user is: the one with its key if there is one (created by a connector sync
 * or the directory before SCIM: adopted), else the user's current principal renamed, else a new one.
 * When the user moves to a key another unprovisioned principal holds, it moves there with its
 * directory memberships, and the old principal is deactivated. A key held by another SCIM user is a 409.
 */
async function claimUserPrincipal(
  db: Queryable, workspaceId: string, user: UserPrincipal, current?: { resourceId: string; principalId: number },
): Promise<number> {
  const { rows } = await db.query<{ id: number; resource_id: string | null }>(
    `SELECT p.id, r.id AS resource_id FROM principals p LEFT JOIN scim_resources r ON r.principal_id = p.id
     WHERE p.workspace_id = $1 AND p.kind = 'user' AND p.key = $2 FOR UPDATE OF p`,
    [workspaceId, user.key],
  );
  const holder = rows[0];
  let principalId: number;
  if (holder !== undefined) {
    if (holder.resource_id !== null && holder.resource_id !== current?.resourceId) {
      throw new AstryError('CONFLICT', `another provisioned user already has the address ${user.key.replace(/^email:/, '')}`);
    }
    principalId = holder.id;
    if (current !== undefined && current.principalId !== principalId) {
      await db.query(
        `INSERT INTO memberships (workspace_id, group_id, member_id, connection_id)
         SELECT workspace_id, group_id, $2, NULL FROM memberships WHERE member_id = $1 AND connection_id IS NULL AND group_id <> $2
         ON CONFLICT DO NOTHING`,
        [current.principalId, principalId],
      );
      await db.query(`DELETE FROM memberships WHERE member_id = $1 AND connection_id IS NULL`, [current.principalId]);
      await db.query(`UPDATE principals SET active = false WHERE id = $1`, [current.principalId]);
    }
  } else if (current !== undefined) {
    principalId = current.principalId;
    await db.query(`UPDATE principals SET key = $2 WHERE id = $1`, [principalId, user.key]);
  } else {
    const inserted = await db.query<{ id: number }>(
      `INSERT INTO principals (workspace_id, kind, key, display_name) VALUES ($1, 'user', $2, '') RETURNING id`,
      [workspaceId, user.key],
    );
    const id = inserted.rows[0]?.id;
    if (id === undefined) throw new Error('principal insert returned no id');
    principalId = id;
  }
  await db.query(`UPDATE principals SET display_name = $2, email = $3, active = $4, clearance = $5 WHERE id = $1`, [
    principalId, user.displayName, user.email, user.active, user.clearance,
  ]);
  return principalId;
}

/** Provisions a user: 409 (CONFLICT) when its userName or its address belongs to another provisioned user. */
export async function createScimUser(db: Queryable, workspaceId: string, id: string, write: ScimWrite, user: UserPrincipal): Promise<void> {
  await assertUserNameFree(db, workspaceId, write.name);
  const principalId = await claimUserPrincipal(db, workspaceId, user);
  await db.query(
    `INSERT INTO scim_resources (id, workspace_id, resource_type, principal_id, name, external_id, attributes) VALUES ($1, $2, 'User', $3, $4, $5, $6)`,
    [id, workspaceId, principalId, write.name, write.externalId, write.attributes],
  );
}

/** Replaces a user (PUT, or the result of a PATCH); `current` was read with a lock. */
export async function replaceScimUser(db: Queryable, workspaceId: string, current: ScimRecord, write: ScimWrite, user: UserPrincipal): Promise<void> {
  if (write.name.toLowerCase() !== current.name.toLowerCase()) await assertUserNameFree(db, workspaceId, write.name, current.id);
  const principalId = await claimUserPrincipal(db, workspaceId, user, { resourceId: current.id, principalId: current.principalId });
  await db.query(
    `UPDATE scim_resources SET principal_id = $2, name = $3, external_id = $4, attributes = $5, updated_at = now() WHERE id = $1`,
    [current.id, principalId, write.name, write.externalId, write.attributes],
  );
}

/**
 * Deprovisions a user: the resource goes (GET answers 404, the userName is free again), the
 * principal stays for grants and history but is inactive, so the next request is refused.
 */
export async function deleteScimUser(db: Queryable, workspaceId: string, id: string): Promise<boolean> {
  if (!UUID.test(id)) return false;
  const { rows } = await db.query<{ principal_id: number }>(
    `DELETE FROM scim_resources WHERE workspace_id = $1 AND resource_type = 'User' AND id = $2 RETURNING principal_id`,
    [workspaceId, id],
  );
  const principalId = rows[0]?.principal_id;
  if (principalId === undefined) return false;
  await db.query(`UPDATE principals SET active = false WHERE id = $1`, [principalId]);
  await db.query(`DELETE FROM memberships WHERE member_id = $1 AND connection_id IS NULL`, [principalId]);
  return true;
}

/** Provisions a group and returns its principal id. */
export async function createScimGroup(db: Queryable, workspaceId: string, id: string, write: ScimWrite): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO principals (workspace_id, kind, key, display_name) VALUES ($1, 'group', $2, $3) RETURNING id`,
    [workspaceId, `scim:group:${id}`, write.name],
  );
  const principalId = rows[0]?.id;
  if (principalId === undefined) throw new Error('principal insert returned no id');
  await db.query(
    `INSERT INTO scim_resources (id, workspace_id, resource_type, principal_id, name, external_id, attributes) VALUES ($1, $2, 'Group', $3, $4, $5, $6)`,
    [id, workspaceId, principalId, write.name, write.externalId, write.attributes],
  );
  return principalId;
}

/** Rewrites a group's own attributes (members are changed with changeGroupMembers). */
export async function replaceScimGroup(db: Queryable, current: ScimRecord, write: ScimWrite): Promise<void> {
  await db.query(`UPDATE principals SET display_name = $2 WHERE id = $1`, [current.principalId, write.name]);
  await db.query(`UPDATE scim_resources SET name = $2, external_id = $3, attributes = $4, updated_at = now() WHERE id = $1`, [
    current.id, write.name, write.externalId, write.attributes,
  ]);
}

/** Deletes a group: its principal, memberships either way, and grants to it go at once. */
export async function deleteScimGroup(db: Queryable, workspaceId: string, id: string): Promise<boolean> {
  if (!UUID.test(id)) return false;
  const { rowCount } = await db.query(
    `DELETE FROM principals WHERE id = (SELECT principal_id FROM scim_resources WHERE workspace_id = $1 AND resource_type = 'Group' AND id = $2)`,
    [workspaceId, id],
  );
  return (rowCount ?? 0) > 0;
}

/** Principal ids of the workspace's provisioned resources with these SCIM ids (unknown ids are absent). */
export async function principalsOf(db: Queryable, workspaceId: string, ids: readonly string[]): Promise<Map<string, number>> {
  const valid = [...new Set(ids.filter((id) => UUID.test(id)).map((id) => id.toLowerCase()))];
  if (valid.length === 0) return new Map();
  const { rows } = await db.query<{ id: string; principal_id: number }>(
    `SELECT id::text, principal_id FROM scim_resources WHERE workspace_id = $1 AND id = ANY($2::uuid[])`,
    [workspaceId, valid],
  );
  return new Map(rows.map((r) => [r.id, r.principal_id]));
}

/** Adds and removes directory-owned members of a group (principal ids); the rest is untouched. */
export async function changeGroupMembers(db: Queryable, workspaceId: string, groupPrincipalId: number, add: readonly number[], remove: readonly number[]): Promise<void> {
  if (remove.length > 0) {
    await db.query(`DELETE FROM memberships WHERE group_id = $1 AND connection_id IS NULL AND member_id = ANY($2::int[])`, [groupPrincipalId, remove]);
  }
  if (add.length > 0) {
    await db.query(
      `INSERT INTO memberships (workspace_id, group_id, member_id, connection_id)
       SELECT $1, $2, m, NULL FROM unnest($3::int[]) AS m ON CONFLICT DO NOTHING`,
      [workspaceId, groupPrincipalId, add],
    );
  }
}

/** Brings a group's directory-owned members to exactly `wanted` (principal ids), writing only the difference. */
export async function setGroupMembers(db: Queryable, workspaceId: string, groupPrincipalId: number, wanted: readonly number[]): Promise<void> {
  const { rows } = await db.query<{ member_id: number }>(`SELECT member_id FROM memberships WHERE group_id = $1 AND connection_id IS NULL`, [groupPrincipalId]);
  const before = new Set(rows.map((r) => r.member_id));
  const after = new Set(wanted);
  await changeGroupMembers(db, workspaceId, groupPrincipalId, [...after].filter((m) => !before.has(m)), [...before].filter((m) => !after.has(m)));
}

/** Marks a resource modified (meta.lastModified) when only its memberships changed. */
export async function touchScimResource(db: Queryable, id: string): Promise<void> {
  await db.query(`UPDATE scim_resources SET updated_at = now() WHERE id = $1`, [id]);
}

/** Directory-owned members of groups (by group principal id), in provisioning order. */
export async function membersOf(db: Queryable, groupPrincipalIds: readonly number[]): Promise<Map<number, ScimRef[]>> {
  return refs(db, groupPrincipalIds, 'group_id', 'member_id');
}

/** Groups users are direct members of through the directory (by user principal id). */
export async function groupsOf(db: Queryable, userPrincipalIds: readonly number[]): Promise<Map<number, ScimRef[]>> {
  return refs(db, userPrincipalIds, 'member_id', 'group_id');
}

async function refs(db: Queryable, ids: readonly number[], self: 'group_id' | 'member_id', other: 'group_id' | 'member_id'): Promise<Map<number, ScimRef[]>> {
  const out = new Map<number, ScimRef[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  const { rows } = await db.query<{ owner: number; id: string; resource_type: ScimResourceType; name: string }>(
    `SELECT m.${self} AS owner, r.id::text, r.resource_type, r.name FROM memberships m JOIN scim_resources r ON r.principal_id = m.${other}
     WHERE m.${self} = ANY($1::int[]) AND m.connection_id IS NULL ORDER BY r.seq`,
    [ids],
  );
  for (const r of rows) out.get(r.owner)?.push({ id: r.id, resourceType: r.resource_type, name: r.name });
  return out;
}

/** Sets (or with null clears) the clearance of the provisioned groups named `displayName`; returns how many. */
export async function setGroupClearance(db: Queryable, workspaceId: string, displayName: string, clearance: number | null): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE principals p SET clearance = $3 FROM scim_resources r
     WHERE r.principal_id = p.id AND r.workspace_id = $1 AND r.resource_type = 'Group' AND lower(r.name) = lower($2)`,
    [workspaceId, displayName, clearance],
  );
  return rowCount ?? 0;
}
