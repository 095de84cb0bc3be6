/**
 * /Users: SCIM users are Astry's canonical users. Creating one makes (or adopts) the principal
 * `email:<address>`; `active` is the principal's active flag, which resolveUser and the query
 * worker check on every request, so `active:false` or DELETE refuses the very next request.
 */
import { randomUUID } from 'node:crypto';
import SCIMMY from 'scimmy';
import { z } from 'zod';
import { inTransaction } from '../../db/pool.ts';
import {
  createScimUser, deleteScimUser, findScimResource, groupsOf, listScimResources, replaceScimUser, type ScimRecord, type ScimRef, type UserPrincipal,
} from '../../db/scim.ts';
import { coerced, ScimError } from './errors.ts';
import { filterToSql } from './filter.ts';
import { applyPatch, normalizeOperations, readPatchOperations } from './patch.ts';
import { listResponse, projection, readListQuery, readResource, render, type Projection, type ScimContext } from './resources.ts';
import { MAX_CLEARANCE } from '../../identity/users.ts';
import { ASTRY_USER_SCHEMA } from './schema.ts';

/** The attributes that decide the principal; the rest of the resource is kept as written. */
const UserFacts = z.object({
  userName: z.string().trim().min(1),
  externalId: z.string().optional(),
  displayName: z.string().optional(),
  name: z.object({ formatted: z.string().optional(), givenName: z.string().optional(), familyName: z.string().optional() }).optional(),
  emails: z.array(z.object({ value: z.string().optional(), type: z.string().optional(), primary: z.boolean().optional() })).optional(),
  active: z.boolean().optional(),
  [ASTRY_USER_SCHEMA]: z.object({ clearance: z.number().optional() }).optional(),
});

/**
 * The canonical principal of a user: key `email:` + the work email (primary first), else the
 * primary email, else any email, else the userName, lowercased. `active` absent keeps `activeDefault`.
 */
export function userPrincipal(resource: Record<string, unknown>, activeDefault: boolean): UserPrincipal {
  const parsed = UserFacts.safeParse(resource);
  if (!parsed.success) throw new ScimError(400, 'invalidValue', `invalid user: ${parsed.error.issues.map((i) => i.path.join('.') || i.message).join(', ')}`);
  const facts = parsed.data;
  const emails = (facts.emails ?? []).filter((e): e is typeof e & { value: string } => typeof e.value === 'string' && e.value.trim() !== '');
  const chosen =
    emails.find((e) => e.type === 'work' && e.primary) ?? emails.find((e) => e.type === 'work') ?? emails.find((e) => e.primary) ?? emails[0];
  const address = (chosen?.value ?? facts.userName).trim().toLowerCase();
  const clearance = facts[ASTRY_USER_SCHEMA]?.clearance;
  if (clearance !== undefined && (!Number.isInteger(clearance) || clearance < 0 || clearance > MAX_CLEARANCE)) {
    throw new ScimError(400, 'invalidValue', `clearance must be an integer within 0..${MAX_CLEARANCE}`);
  }
  const given = [facts.name?.givenName, facts.name?.familyName].filter(Boolean).join(' ');
  return {
    key: `email:${address}`,
    displayName: facts.displayName || facts.name?.formatted || given || facts.userName,
    email: chosen?.value.trim() ?? (address.includes('@') ? address : null),
    active: facts.active ?? activeDefault,
    clearance: clearance ?? null,
  };
}

/**
 * What is stored: everything but what columns or memberships hold. `active` stays as the IdP wrote
 * it (or did not): the principal's flag is the effective state, this records whether it was assigned.
 */
function stored(resource: Record<string, unknown>): { name: string; externalId: string | null; attributes: Record<string, unknown> } {
  const { userName, externalId, id: _id, meta: _meta, schemas: _schemas, groups: _groups, password: _password, ...attributes } = resource;
  if (typeof userName !== 'string') throw new ScimError(400, 'invalidValue', 'userName is required');
  return { name: userName.trim(), externalId: typeof externalId === 'string' ? externalId : null, attributes };
}

function toResource(record: ScimRecord, groups: ScimRef[] | undefined, baseUrl: string): Record<string, unknown> {
  const { active: assigned, ...attributes } = record.attributes;
  // The effective state, once the IdP assigned one (removing `active` leaves the state as it was).
  const showActive = typeof assigned === 'boolean';
  return {
    ...attributes,
    id: record.id,
    userName: record.name,
    ...(record.externalId === null ? {} : { externalId: record.externalId }),
    ...(showActive ? { active: record.active } : {}),
    ...(groups === undefined || groups.length === 0
      ? {}
      : { groups: groups.map((g) => ({ value: g.id, display: g.name, type: 'direct', $ref: `${baseUrl}/Groups/${g.id}` })) }),
    meta: { resourceType: 'User', created: record.createdAt, lastModified: record.updatedAt },
  };
}

async function renderUsers(ctx: ScimContext, records: ScimRecord[], view: Projection): Promise<Record<string, unknown>[]> {
  const groups = view.returns('groups') ? await groupsOf(ctx.pool, records.map((r) => r.principalId)) : undefined;
  return records.map((r) => render('User', toResource(r, groups?.get(r.principalId), ctx.baseUrl), ctx.baseUrl, view));
}

async function mustFind(ctx: ScimContext, id: string): Promise<ScimRecord> {
  const record = await findScimResource(ctx.pool, ctx.workspaceId, 'User', id);
  if (record === undefined) throw new ScimError(404, undefined, `User ${id} not found`);
  return record;
}

/** GET /Users: filtered (eq, and, or, not, value paths...), paged in creation order. */
export async function listUsers(ctx: ScimContext, query: unknown): Promise<Record<string, unknown>> {
  const q = readListQuery(query);
  const view = projection('User', q);
  const filter = q.filter;
  const page = await listScimResources(ctx.pool, ctx.workspaceId, 'User', {
    ...(filter === undefined ? {} : { where: (params: unknown[]) => filterToSql('User', filter, params) }),
    offset: q.startIndex - 1,
    limit: q.count,
  });
  return listResponse(await renderUsers(ctx, page.records, view), page.total, q.startIndex);
}

export async function getUser(ctx: ScimContext, id: string, query: unknown): Promise<Record<string, unknown>> {
  const [out] = await renderUsers(ctx, [await mustFind(ctx, id)], projection('User', readListQuery(query)));
  if (out === undefined) throw new Error('render returned nothing');
  return out;
}

/** POST /Users: 409 uniqueness if the userName, or the address the principal is keyed by, is taken. */
export async function createUser(ctx: ScimContext, body: unknown, query: unknown): Promise<Record<string, unknown>> {
  const resource = readResource('User', body);
  const principal = userPrincipal(resource, true);
  const id = randomUUID();
  await inTransaction(ctx.pool, (tx) => createScimUser(tx, ctx.workspaceId, id, stored(resource), principal));
  return getUser(ctx, id, query);
}

/** PUT /Users/:id: replaces the resource; an absent `active` keeps the current state (Okta sends it, others may not). */
export async function replaceUser(ctx: ScimContext, id: string, body: unknown, query: unknown): Promise<Record<string, unknown>> {
  const resource = readResource('User', body);
  await inTransaction(ctx.pool, async (tx) => {
    const current = await findScimResource(tx, ctx.workspaceId, 'User', id, { lock: true });
    if (current === undefined) throw new ScimError(404, undefined, `User ${id} not found`);
    await replaceScimUser(tx, ctx.workspaceId, current, stored(resource), userPrincipal(resource, current.active));
  });
  return getUser(ctx, id, query);
}

/** PATCH /Users/:id in Okta's and Entra's shapes (api/scim/patch.ts). */
export async function patchUser(ctx: ScimContext, id: string, body: unknown, query: unknown): Promise<Record<string, unknown>> {
  const operations = normalizeOperations('User', readPatchOperations(body));
  await inTransaction(ctx.pool, async (tx) => {
    const current = await findScimResource(tx, ctx.workspaceId, 'User', id, { lock: true });
    if (current === undefined) throw new ScimError(404, undefined, `User ${id} not found`);
    const instance = coerced(() => new SCIMMY.Schemas.User(toResource(current, undefined, ctx.baseUrl), 'out', `${ctx.baseUrl}/Users`));
    const patched = await applyPatch(instance, operations);
    if (patched === undefined) return;
    const resource = readResource('User', patched);
    await replaceScimUser(tx, ctx.workspaceId, current, stored(resource), userPrincipal(resource, current.active));
  });
  return getUser(ctx, id, query);
}

/** DELETE /Users/:id: deprovisioned; the principal is kept inactive (its next request is refused). */
export async function deleteUser(ctx: ScimContext, id: string): Promise<void> {
  const deleted = await inTransaction(ctx.pool, (tx) => deleteScimUser(tx, ctx.workspaceId, id));
  if (!deleted) throw new ScimError(404, undefined, `User ${id} not found`);
}
