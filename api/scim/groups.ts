/**
 * /Groups: directory groups are group principals; their members are memberships owned by the
 * directory (connection_id NULL), which principalSet follows, so a membership change is in the
 * principal set of the member's next query.
 */
import { randomUUID } from 'node:crypto';
import SCIMMY from 'scimmy';
import { z } from 'zod';
import { inTransaction, type Queryable } from '../../db/pool.ts';
import {
  changeGroupMembers, createScimGroup, deleteScimGroup, findScimResource, listScimResources, membersOf, principalsOf, replaceScimGroup,
  setGroupMembers, touchScimResource, type ScimRecord, type ScimRef,
} from '../../db/scim.ts';
import { coerced, ScimError } from './errors.ts';
import { parseFilter } from './filter-parse.ts';
import { filterToSql } from './filter.ts';
import { applyPatch, normalizeOperations, readPatchOperations, type PatchOperation } from './patch.ts';
import { listResponse, projection, readListQuery, readResource, render, type Projection, type ScimContext } from './resources.ts';

const Members = z.array(z.object({ value: z.string() })).optional();

function stored(resource: Record<string, unknown>): { name: string; externalId: string | null; attributes: Record<string, unknown> } {
  const { displayName, externalId, members: _members, id: _id, meta: _meta, schemas: _schemas, ...attributes } = resource;
  if (typeof displayName !== 'string' || displayName.trim() === '') throw new ScimError(400, 'invalidValue', 'displayName is required');
  return { name: displayName, externalId: typeof externalId === 'string' ? externalId : null, attributes };
}

function memberIds(resource: Record<string, unknown>): string[] {
  const parsed = Members.safeParse(resource.members);
  if (!parsed.success) throw new ScimError(400, 'invalidValue', 'members must be a list of {"value": "<id>"}');
  return [...new Set((parsed.data ?? []).map((m) => m.value.toLowerCase()))];
}

function toResource(record: ScimRecord, members: ScimRef[] | undefined, baseUrl: string): Record<string, unknown> {
  return {
    ...record.attributes,
    id: record.id,
    displayName: record.name,
    ...(record.externalId === null ? {} : { externalId: record.externalId }),
    ...(members === undefined || members.length === 0
      ? {}
      : {
          members: members.map((m) => ({
            value: m.id, type: m.resourceType, $ref: `${baseUrl}/${m.resourceType === 'User' ? 'Users' : 'Groups'}/${m.id}`,
          })),
        }),
    meta: { resourceType: 'Group', created: record.createdAt, lastModified: record.updatedAt },
  };
}

async function renderGroups(ctx: ScimContext, records: ScimRecord[], view: Projection): Promise<Record<string, unknown>[]> {
  // Entra reads groups with excludedAttributes=members: then members are not even loaded.
  const members = view.returns('members') ? await membersOf(ctx.pool, records.map((r) => r.principalId)) : undefined;
  return records.map((r) => render('Group', toResource(r, members?.get(r.principalId), ctx.baseUrl), ctx.baseUrl, view));
}

/** Principal ids of members by SCIM id; an id that is not a provisioned user or group here is 400 invalidValue. */
async function resolveMembers(db: Queryable, workspaceId: string, group: number | undefined, ids: readonly string[]): Promise<number[]> {
  const found = await principalsOf(db, workspaceId, ids);
  const unknown = ids.filter((id) => !found.has(id.toLowerCase()));
  if (unknown.length > 0) throw new ScimError(400, 'invalidValue', `unknown members: ${unknown.slice(0, 5).join(', ')}`);
  const principals = ids.map((id) => found.get(id.toLowerCase()) ?? -1);
  if (group !== undefined && principals.includes(group)) throw new ScimError(400, 'invalidValue', 'a group cannot be its own member');
  return principals;
}

/** GET /Groups. */
export async function listGroups(ctx: ScimContext, query: unknown): Promise<Record<string, unknown>> {
  const q = readListQuery(query);
  const filter = q.filter;
  const page = await listScimResources(ctx.pool, ctx.workspaceId, 'Group', {
    ...(filter === undefined ? {} : { where: (params: unknown[]) => filterToSql('Group', filter, params) }),
    offset: q.startIndex - 1,
    limit: q.count,
  });
  return listResponse(await renderGroups(ctx, page.records, projection('Group', q)), page.total, q.startIndex);
}

export async function getGroup(ctx: ScimContext, id: string, query: unknown): Promise<Record<string, unknown>> {
  const record = await findScimResource(ctx.pool, ctx.workspaceId, 'Group', id);
  if (record === undefined) throw new ScimError(404, undefined, `Group ${id} not found`);
  const [out] = await renderGroups(ctx, [record], projection('Group', readListQuery(query)));
  if (out === undefined) throw new Error('render returned nothing');
  return out;
}

/** POST /Groups, members included. */
export async function createGroup(ctx: ScimContext, body: unknown, query: unknown): Promise<Record<string, unknown>> {
  const resource = readResource('Group', body);
  const id = randomUUID();
  await inTransaction(ctx.pool, async (tx) => {
    const add = await resolveMembers(tx, ctx.workspaceId, undefined, memberIds(resource));
    const principal = await createScimGroup(tx, ctx.workspaceId, id, stored(resource));
    await changeGroupMembers(tx, ctx.workspaceId, principal, add, []);
  });
  return getGroup(ctx, id, query);
}

/** Writes a group's attributes and brings its directory members to exactly `wanted` (principal ids). */
async function writeGroup(tx: Queryable, ctx: ScimContext, current: ScimRecord, resource: Record<string, unknown>, wanted: number[]): Promise<void> {
  await replaceScimGroup(tx, current, stored(resource));
  await setGroupMembers(tx, ctx.workspaceId, current.principalId, wanted);
}

/** PUT /Groups/:id: replaces attributes and the whole member list (absent members: none). */
export async function replaceGroup(ctx: ScimContext, id: string, body: unknown, query: unknown): Promise<Record<string, unknown>> {
  const resource = readResource('Group', body);
  await inTransaction(ctx.pool, async (tx) => {
    const current = await findScimResource(tx, ctx.workspaceId, 'Group', id, { lock: true });
    if (current === undefined) throw new ScimError(404, undefined, `Group ${id} not found`);
    await writeGroup(tx, ctx, current, resource, await resolveMembers(tx, ctx.workspaceId, current.principalId, memberIds(resource)));
  });
  return getGroup(ctx, id, query);
}

/**
 * The member ids a PATCH adds and removes, when it does nothing else: Okta's and Entra's
 * membership updates. Those skip loading the group (which may have many thousands of members).
 */
function membershipDelta(operations: readonly PatchOperation[]): { add: string[]; remove: string[] } | undefined {
  const add: string[] = [];
  const remove: string[] = [];
  for (const o of operations) {
    if (o.op === 'add' && o.path === 'members') {
      const ids = Members.safeParse(Array.isArray(o.value) ? o.value : [o.value]);
      if (!ids.success || ids.data === undefined) return undefined;
      add.push(...ids.data.map((m) => m.value));
    } else if (o.op === 'remove' && o.path === 'members' && o.value !== undefined) {
      const ids = Members.safeParse(Array.isArray(o.value) ? o.value : [o.value]);
      if (!ids.success || ids.data === undefined) return undefined;
      remove.push(...ids.data.map((m) => m.value));
    } else if (o.op === 'remove' && o.path !== undefined && /^members\[.*\]$/.test(o.path)) {
      const id = memberEquality(o.path.slice('members['.length, -1));
      if (id === undefined) return undefined;
      remove.push(id);
    } else {
      return undefined;
    }
  }
  // An id both added and removed: order matters, leave it to the general path.
  if (add.some((a) => remove.includes(a))) return undefined;
  return { add, remove };
}

/** `value eq "<id>"` -> id. */
function memberEquality(filter: string): string | undefined {
  const node = parseFilter(filter);
  return node.kind === 'compare' && node.path === 'value' && node.op === 'eq' && typeof node.value === 'string' ? node.value : undefined;
}

/** PATCH /Groups/:id: rename, externalId, and members added or removed by value list or filter path. */
export async function patchGroup(ctx: ScimContext, id: string, body: unknown, query: unknown): Promise<Record<string, unknown>> {
  const operations = normalizeOperations('Group', readPatchOperations(body));
  await inTransaction(ctx.pool, async (tx) => {
    const current = await findScimResource(tx, ctx.workspaceId, 'Group', id, { lock: true });
    if (current === undefined) throw new ScimError(404, undefined, `Group ${id} not found`);
    const delta = membershipDelta(operations);
    if (delta !== undefined) {
      const add = await resolveMembers(tx, ctx.workspaceId, current.principalId, delta.add);
      const known = await principalsOf(tx, ctx.workspaceId, delta.remove);
      await changeGroupMembers(tx, ctx.workspaceId, current.principalId, add, [...known.values()]);
      await touchScimResource(tx, current.id);
      return;
    }
    const members = (await membersOf(tx, [current.principalId])).get(current.principalId) ?? [];
    const instance = coerced(() => new SCIMMY.Schemas.Group(toResource(current, members, ctx.baseUrl), 'out', `${ctx.baseUrl}/Groups`));
    const patched = await applyPatch(instance, operations);
    if (patched === undefined) return;
    const resource = readResource('Group', patched);
    await writeGroup(tx, ctx, current, resource, await resolveMembers(tx, ctx.workspaceId, current.principalId, memberIds(resource)));
  });
  return getGroup(ctx, id, query);
}

/** DELETE /Groups/:id: the group principal goes, and with it every membership and grant. */
export async function deleteGroup(ctx: ScimContext, id: string): Promise<void> {
  const deleted = await inTransaction(ctx.pool, (tx) => deleteScimGroup(tx, ctx.workspaceId, id));
  if (!deleted) throw new ScimError(404, undefined, `Group ${id} not found`);
}
