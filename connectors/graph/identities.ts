/** Entra ID users -> source identities and canonical user principals. Pure. */
import type { DocumentSubject, IdentityKind, PrincipalRef, SourceIdentity } from '../types.ts';
import type { DriveItem, GraphUser, IdentitySet } from './schemas.ts';

/**
 * How Entra classifies the user. A B2B guest (userType Guest, or a `#EXT#` user principal name
 * when userType is missing) is `external`: their home tenant asserts who they are, not ours.
 */
export function identityKind(user: GraphUser): IdentityKind {
  if (user.userType === 'Guest' || user.userPrincipalName.toUpperCase().includes('#EXT#')) return 'external';
  return 'member';
}

/**
 * The canonical user of an Entra account: `email:<lowercased mail>` for our own members with a
 * mailbox address (set by the tenant's admins: this is what links them to the same person in Slack
 * and Drive), else `graph:<tenant>:<object id>`. Why guests never link by email: `frank@partner.example`
 * is asserted by the partner's tenant, and a guest whose mail claims one of our addresses must not
 * become our employee.
 */
export function userPrincipal(user: GraphUser, tenantId: string): PrincipalRef {
  const mail = user.mail?.trim().toLowerCase();
  if (identityKind(user) === 'member' && mail) return { kind: 'user', key: `email:${mail}` };
  return { kind: 'user', key: `graph:${tenantId}:${user.id}` };
}

/** An Entra user as a SourceIdentity; disabled accounts (accountEnabled false) are inactive. */
export function toIdentity(user: GraphUser, tenantId: string): SourceIdentity {
  const mail = user.mail?.trim();
  return {
    sourceUserId: user.id,
    displayName: user.displayName?.trim() || user.userPrincipalName,
    email: mail ? mail : null,
    kind: identityKind(user),
    active: user.accountEnabled !== false,
    user: userPrincipal(user, tenantId),
  };
}

/** `i:0#.f|membership|<upn>` -> `<upn>` (lowercased); other login names -> null. */
export function upnOfLoginName(loginName: string): string | null {
  const match = /^i:0#\.f\|membership\|(.+)$/i.exec(loginName);
  return match?.[1] ? match[1].toLowerCase() : null;
}

/** Looks identities up by object id, user principal name or mail. */
export class IdentityIndex {
  readonly #byId = new Map<string, SourceIdentity>();
  readonly #byUpn = new Map<string, SourceIdentity>();
  readonly #byMail = new Map<string, SourceIdentity>();

  constructor(users: readonly GraphUser[], tenantId: string) {
    for (const user of users) {
      const identity = toIdentity(user, tenantId);
      this.#byId.set(user.id, identity);
      this.#byUpn.set(user.userPrincipalName.toLowerCase(), identity);
      if (identity.email) this.#byMail.set(identity.email.toLowerCase(), identity);
    }
  }

  get all(): SourceIdentity[] {
    return [...this.#byId.values()];
  }

  byId(id: string): SourceIdentity | undefined {
    return this.#byId.get(id);
  }

  byUpn(upn: string): SourceIdentity | undefined {
    return this.#byUpn.get(upn.toLowerCase());
  }

  /**
   * The identity a permission's user/siteUser facets name: by object id, then by the login name's
   * UPN, then by email. Undefined when the directory does not know them.
   */
  resolve(set: IdentitySet): SourceIdentity | undefined {
    const id = set.user?.id;
    const byId = id ? this.#byId.get(id) : undefined;
    if (byId) return byId;
    const upn = set.siteUser?.loginName ? upnOfLoginName(set.siteUser.loginName) : null;
    const byUpn = upn ? this.#byUpn.get(upn) : undefined;
    if (byUpn) return byUpn;
    const email = (set.user?.email ?? set.siteUser?.email)?.toLowerCase();
    return email ? this.#byMail.get(email) : undefined;
  }
}

/**
 * The people a driveItem concerns, as its provenance: the users in `createdBy` and `lastModifiedBy`,
 * both authors, named by Entra object id (as SourceIdentity.sourceUserId). An identity set the
 * directory resolves (by id, login name or email) gives the directory's id; an unknown user keeps
 * the id Graph gave. Applications and devices (no user facet) are nobody. Earlier editors are not
 * listed: Graph names only the creator and the last modifier, and we do not read version histories.
 */
export function itemSubjects(item: Pick<DriveItem, 'createdBy' | 'lastModifiedBy'>, identities: IdentityIndex): DocumentSubject[] {
  const ids = new Set<string>();
  for (const set of [item.createdBy, item.lastModifiedBy]) {
    if (!set || (!set.user && !set.siteUser)) continue;
    const id = identities.resolve(set)?.sourceUserId ?? set.user?.id;
    if (id) ids.add(id);
  }
  return [...ids].map((sourceUserId) => ({ sourceUserId, role: 'author' }));
}
