/**
 * Who may read what, mirrored from Google Drive. Pure functions.
 *
 * Principals (tenant = the Workspace customer id):
 * - users of the customer's domains: `email:<lowercased>` (links to the same person in other sources);
 *   people outside them: `drive:<customer>:user:<email>` (their own principal, never linked);
 * - Google groups: `drive:<customer>:group:<email>`, members from Admin SDK derived membership;
 * - shared drive members: `drive:<customer>:shareddrive:<id>` and its `:organizers` (polled, since
 *   membership changes produce no change entry for the drive's files);
 * - specials: `drive:<customer>:anyone` (discoverable public), `drive:<customer>:domain:<domain>`
 *   (discoverable domain-wide), `drive:<customer>:customer` (a group's CUSTOMER member).
 */
import type { Grant, GroupMembers, PrincipalRef, SourceIdentity } from '../types.ts';
import type { DriveFile, DrivePermission, GroupMemberEntry, GoogleGroup } from './schemas.ts';

/** What ACL mapping needs to know about the customer. */
export interface AclContext {
  customerId: string;
  /** The customer's domains, lowercased: emails in them are internal. */
  domains: ReadonlySet<string>;
  /** Lowercased emails of suspended or archived users: they are granted nothing. */
  inactive: ReadonlySet<string>;
}

const prefix = (ctx: AclContext) => `drive:${ctx.customerId}`;

export const anyoneSpecial = (ctx: AclContext): PrincipalRef => ({ kind: 'special', key: `${prefix(ctx)}:anyone` });
export const customerSpecial = (ctx: AclContext): PrincipalRef => ({ kind: 'special', key: `${prefix(ctx)}:customer` });
export const domainSpecial = (ctx: AclContext, domain: string): PrincipalRef => ({ kind: 'special', key: `${prefix(ctx)}:domain:${domain.toLowerCase()}` });
export const groupRef = (ctx: AclContext, email: string): PrincipalRef => ({ kind: 'group', key: `${prefix(ctx)}:group:${email.toLowerCase()}` });
export const driveMembersGroup = (ctx: AclContext, driveId: string): PrincipalRef => ({ kind: 'group', key: `${prefix(ctx)}:shareddrive:${driveId}` });
export const driveOrganizersGroup = (ctx: AclContext, driveId: string): PrincipalRef => ({ kind: 'group', key: `${prefix(ctx)}:shareddrive:${driveId}:organizers` });

function domainOf(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1).toLowerCase();
}

/** The user principal of an email, or null for an inactive (suspended, archived) internal user. */
export function userRef(ctx: AclContext, email: string): PrincipalRef | null {
  const lower = email.trim().toLowerCase();
  if (!lower.includes('@')) return null;
  if (!ctx.domains.has(domainOf(lower))) return { kind: 'user', key: `${prefix(ctx)}:user:${lower}` };
  return ctx.inactive.has(lower) ? null : { kind: 'user', key: `email:${lower}` };
}

/**
 * The principal one permission grants, or null. Link-only sharing (`anyone` or `domain` with
 * allowFileDiscovery=false) grants nothing: whoever has the link may open the file, but Astry has
 * no way to know who has it, so it is not treated as public (SOURCES case 14). Permissions of
 * deleted accounts grant nothing.
 */
export function permissionPrincipal(ctx: AclContext, p: DrivePermission): PrincipalRef | null {
  if (p.deleted) return null;
  switch (p.type) {
    case 'user':
      return p.emailAddress ? userRef(ctx, p.emailAddress) : null;
    case 'group':
      return p.emailAddress ? groupRef(ctx, p.emailAddress) : null;
    case 'domain':
      return p.allowFileDiscovery && p.domain ? domainSpecial(ctx, p.domain) : null;
    case 'anyone':
      return p.allowFileDiscovery ? anyoneSpecial(ctx) : null;
  }
}

/**
 * The grants of a file from its permissions.list. For shared drive items, access that comes only
 * from drive membership (`permissionDetails` all `member`) is granted through the drive's members
 * group (or its organizers group when `limited`: an ancestor-or-self has inheritedPermissionsDisabled),
 * so a membership change revokes every file of the drive at once; file-level parts (direct or
 * inherited from a folder) are granted as they are, with their expiry.
 */
export function fileAcl(ctx: AclContext, file: Pick<DriveFile, 'driveId'>, permissions: readonly DrivePermission[], limited: boolean): Grant[] {
  const grants = new Map<string, Grant>();
  const add = (ref: PrincipalRef, expiresAt: Date | null): void => {
    const key = `${ref.kind}:${ref.key}`;
    const prev = grants.get(key);
    // Two grants to one principal: the one lasting longer wins (no expiry beats any expiry).
    const longer = !prev ? expiresAt : prev.expiresAt == null || expiresAt === null ? null : prev.expiresAt > expiresAt ? prev.expiresAt : expiresAt;
    grants.set(key, { ...ref, expiresAt: longer });
  };
  for (const p of permissions) {
    if (file.driveId && p.permissionDetails && p.permissionDetails.length > 0 && p.permissionDetails.every((d) => d.permissionType === 'member')) continue;
    const ref = permissionPrincipal(ctx, p);
    if (!ref) continue;
    const expiry = p.expirationTime ? new Date(p.expirationTime) : null;
    add(ref, expiry && !Number.isNaN(expiry.getTime()) ? expiry : null);
  }
  if (file.driveId) add(limited ? driveOrganizersGroup(ctx, file.driveId) : driveMembersGroup(ctx, file.driveId), null);
  return [...grants.values()];
}

/** The members of the drive's members and organizers groups, from permissions.list on the drive id. */
export function driveGroups(ctx: AclContext, drive: { id: string; name: string }, members: readonly DrivePermission[]): GroupMembers[] {
  const refs = (ps: readonly DrivePermission[]) =>
    ps.flatMap((p) => {
      // A shared drive shared with a domain makes the domain a member, discoverable or not.
      const ref = p.type === 'domain' && p.domain ? domainSpecial(ctx, p.domain) : permissionPrincipal(ctx, p);
      return ref ? [ref] : [];
    });
  return [
    { group: driveMembersGroup(ctx, drive.id), displayName: `Shared drive ${drive.name}`, members: refs(members) },
    { group: driveOrganizersGroup(ctx, drive.id), displayName: `Shared drive ${drive.name} (managers)`, members: refs(members.filter((m) => m.role === 'organizer')) },
  ];
}

/**
 * A Google group's members from members.list with includeDerivedMembership=true: every user,
 * nested ones included (Google expands nesting and cycles). GROUP entries add nothing beyond their
 * users and are skipped; a CUSTOMER member stands for every user of the customer.
 */
export function googleGroupMembers(ctx: AclContext, group: GoogleGroup, entries: readonly GroupMemberEntry[]): GroupMembers {
  const members = new Map<string, PrincipalRef>();
  for (const m of entries) {
    const ref =
      m.type === 'CUSTOMER' ? customerSpecial(ctx)
      : m.type === 'USER' && m.email && m.status !== 'SUSPENDED' ? userRef(ctx, m.email)
      : null;
    if (ref) members.set(ref.key, ref);
  }
  return { group: groupRef(ctx, group.email), displayName: `Google group ${group.name || group.email}`, members: [...members.values()] };
}

/** The org-wide specials: anyone (discoverable public), the customer, and each of its domains. */
export function specialMembers(ctx: AclContext, identities: readonly SourceIdentity[]): GroupMembers[] {
  const active = identities.filter((i) => i.active);
  const users = (list: readonly SourceIdentity[]) => [...new Map(list.map((i) => [i.user.key, i.user])).values()];
  return [
    { group: anyoneSpecial(ctx), displayName: 'Anyone (public on the web)', members: users(active) },
    { group: customerSpecial(ctx), displayName: 'Everyone in the Google Workspace customer', members: users(active) },
    ...[...ctx.domains].map((domain) => ({
      group: domainSpecial(ctx, domain),
      displayName: `Everyone at ${domain}`,
      members: users(active.filter((i) => i.email !== null && domainOf(i.email) === domain)),
    })),
  ];
}
