/**
 * Who may read what, mirrored from SharePoint/OneDrive. Pure functions. Principals of a tenant `t`:
 * - `graph:t:group:<id>`: an Entra group's transitive, enabled users (a deleted group: nobody);
 *   `graph:t:group:<id>:owners`: a Microsoft 365 group's owners (the `_o` claim);
 * - `graph:t:site:<site id>:group:<N>`: a SharePoint site group (users, group claims, specials);
 * - `graph:t:internal`: every enabled member of the tenant ("Everyone except external users",
 *   organization links); `graph:t:everyone`: the same plus enabled guests ("Everyone").
 * An item's ACL is the union over the permissions Graph lists for it, inherited ones included.
 */
import type { Grant, PrincipalRef, SourceIdentity } from '../types.ts';
import type { IdentityIndex } from './identities.ts';
import { upnOfLoginName } from './identities.ts';
import type { GraphPermission, IdentitySet, SpUser } from './schemas.ts';

export const internalSpecial = (tenantId: string): PrincipalRef => ({ kind: 'special', key: `graph:${tenantId}:internal` });
export const everyoneSpecial = (tenantId: string): PrincipalRef => ({ kind: 'special', key: `graph:${tenantId}:everyone` });
/** Entra object ids are GUIDs compared case-insensitively: claims and Graph may differ in case. */
export const entraGroup = (tenantId: string, groupId: string): PrincipalRef => ({ kind: 'group', key: `graph:${tenantId}:group:${groupId.toLowerCase()}` });
export const groupOwners = (tenantId: string, groupId: string): PrincipalRef => ({ kind: 'group', key: `graph:${tenantId}:group:${groupId.toLowerCase()}:owners` });
export const siteGroup = (tenantId: string, siteId: string, id: string | number): PrincipalRef => ({ kind: 'group', key: `graph:${tenantId}:site:${siteId}:group:${id}` });
/** Someone a link was shared with whom the directory does not know: their own principal, never linked. */
export const externalUser = (tenantId: string, email: string): PrincipalRef => ({ kind: 'user', key: `graph:${tenantId}:external:${email.toLowerCase()}` });

export interface AclContext {
  tenantId: string;
  /** The site whose drive holds the item (site groups are per site). */
  siteId: string;
  identities: IdentityIndex;
}

/** A user grant, or null for a disabled account (it never grants anything). */
function userGrant(set: IdentitySet, ctx: AclContext): PrincipalRef | null {
  const identity = ctx.identities.resolve(set);
  if (identity) return identity.active ? identity.user : null;
  const email = set.user?.email ?? set.siteUser?.email;
  if (email) return externalUser(ctx.tenantId, email);
  const id = set.user?.id;
  return id ? { kind: 'user', key: `graph:${ctx.tenantId}:${id}` } : null;
}

/** The principals one identity set names (a user, an Entra group, or a site group). */
function identityGrants(set: IdentitySet, ctx: AclContext): PrincipalRef[] {
  if (set.siteGroup?.id) return [siteGroup(ctx.tenantId, ctx.siteId, set.siteGroup.id)];
  if (set.group?.id) return [entraGroup(ctx.tenantId, set.group.id)];
  if (set.user || set.siteUser) {
    const claim = set.siteUser?.loginName ? claimPrincipal(set.siteUser.loginName, ctx.tenantId) : null;
    if (claim) return [claim];
    const user = userGrant(set, ctx);
    return user ? [user] : [];
  }
  return [];
}

function expiry(permission: GraphPermission): Date | null {
  if (!permission.expirationDateTime) return null;
  const at = new Date(permission.expirationDateTime);
  return Number.isNaN(at.getTime()) ? null : at;
}

/**
 * What one permission grants. Sharing links by scope: `organization` -> every internal user (no
 * guests); `users` -> exactly the identities it lists (guests included); `anonymous` -> nothing:
 * link-only sharing is not publication, and the people who hold the link are unknown;
 * `existingAccess` -> nothing new. Direct grants: the user, Entra group or site group named.
 * A link's expirationDateTime becomes the grant's expiry, enforced at query time.
 */
export function permissionGrants(permission: GraphPermission, ctx: AclContext): Grant[] {
  const expiresAt = expiry(permission);
  const withExpiry = (refs: PrincipalRef[]): Grant[] => refs.map((r) => (expiresAt ? { ...r, expiresAt } : { ...r }));
  const sets = [...(permission.grantedToV2 ? [permission.grantedToV2] : []), ...(permission.grantedToIdentitiesV2 ?? [])];
  if (permission.link) {
    switch (permission.link.scope) {
      case 'organization':
        return withExpiry([internalSpecial(ctx.tenantId)]);
      case 'users':
        return withExpiry(sets.flatMap((s) => identityGrants(s, ctx)));
      default:
        return [];
    }
  }
  return withExpiry(sets.flatMap((s) => identityGrants(s, ctx)));
}

/** The union of an item's permissions; a principal granted twice keeps the later expiry (none beats any). */
export function itemAcl(permissions: readonly GraphPermission[], ctx: AclContext): Grant[] {
  const byKey = new Map<string, Grant>();
  for (const grant of permissions.flatMap((p) => permissionGrants(p, ctx))) {
    const key = `${grant.kind}:${grant.key}`;
    const prev = byKey.get(key);
    if (!prev) {
      byKey.set(key, grant);
      continue;
    }
    const a = prev.expiresAt ?? null;
    const b = grant.expiresAt ?? null;
    byKey.set(key, { kind: grant.kind, key: grant.key, ...(a === null || b === null ? {} : { expiresAt: a > b ? a : b }) });
  }
  return [...byKey.values()].sort((x, y) => x.key.localeCompare(y.key));
}

/**
 * The principal a SharePoint claim names: Microsoft 365 group members/owners, a security group,
 * "Everyone except external users", "Everyone". Null for a user login or an unknown claim.
 * https://learn.microsoft.com/en-us/sharepoint/dev/general-development/claims-based-identity-and-concepts-in-sharepoint
 */
export function claimPrincipal(loginName: string, tenantId: string): PrincipalRef | null {
  const group = /^c:0o\.c\|federateddirectoryclaimprovider\|([0-9a-f-]{36})(_o)?$/i.exec(loginName);
  if (group?.[1]) return group[2] ? groupOwners(tenantId, group[1].toLowerCase()) : entraGroup(tenantId, group[1].toLowerCase());
  const security = /^c:0t\.c\|tenant\|([0-9a-f-]{36})$/i.exec(loginName);
  if (security?.[1]) return entraGroup(tenantId, security[1].toLowerCase());
  if (/^c:0-\.f\|rolemanager\|spo-grid-all-users\//i.test(loginName)) return internalSpecial(tenantId);
  if (loginName === 'c:0(.s|true' || loginName === 'c:0!.s|windows') return everyoneSpecial(tenantId);
  return null;
}

/** The members of a SharePoint site group from its REST `users`: enabled users, group claims, specials. */
export function siteGroupMembers(users: readonly SpUser[], ctx: Pick<AclContext, 'tenantId' | 'identities'>): PrincipalRef[] {
  const members: PrincipalRef[] = [];
  for (const row of users) {
    const claim = claimPrincipal(row.LoginName, ctx.tenantId);
    if (claim) {
      members.push(claim);
      continue;
    }
    const upn = upnOfLoginName(row.LoginName) ?? row.UserPrincipalName?.toLowerCase();
    const identity = upn ? ctx.identities.byUpn(upn) : undefined;
    if (identity) {
      if (identity.active) members.push(identity.user);
    } else if (row.Email) {
      members.push(externalUser(ctx.tenantId, row.Email));
    }
  }
  return members;
}

/** Users (active only) of a list of identities, each once. */
export function activeUsers(identities: Iterable<SourceIdentity | undefined>): PrincipalRef[] {
  const byKey = new Map<string, PrincipalRef>();
  for (const identity of identities) if (identity?.active) byKey.set(identity.user.key, identity.user);
  return [...byKey.values()];
}
