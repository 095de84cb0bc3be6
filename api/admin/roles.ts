/**
 * Admin roles, read from a claim of the verified access token. Entra puts app roles in `roles`
 * (https://learn.microsoft.com/entra/identity-platform/howto-add-app-roles-in-apps), Okta puts
 * groups in whatever claim the authorization server's groups claim is named, usually `groups`
 * (https://developer.okta.com/docs/guides/customize-tokens-groups-claim/). The claim's name is
 * configurable (ASTRY_ADMIN_ROLES_CLAIM); the role values are fixed.
 */
import { z } from 'zod';

/** Lists, triggers, pauses and resumes connections and reads their sync errors. */
export const ADMIN_ROLE = 'astry.admin';
/** Erases data subjects and verifies the audit trail. Not implied by ADMIN_ROLE: separation of duties. */
export const COMPLIANCE_ROLE = 'astry.compliance';
export type AdminRole = typeof ADMIN_ROLE | typeof COMPLIANCE_ROLE;

/** The claim Entra uses for app roles; the default of ASTRY_ADMIN_ROLES_CLAIM. */
export const DEFAULT_ROLES_CLAIM = 'roles';

// An array of strings, or one string as a single role (some IdPs and mappers emit a one-element list as
// a bare string). A string is never split: "astry.admin astry.compliance" is one role that matches nothing.
const RolesClaim = z.union([z.array(z.string()), z.string().transform((role) => [role])]);

/**
 * The roles `claims[claimName]` carries. Anything else (absent, a number, an object, a list holding a
 * non-string) is no roles at all: a claim we cannot read grants nothing.
 */
export function rolesOf(claims: Readonly<Record<string, unknown>>, claimName: string): ReadonlySet<string> {
  if (!Object.hasOwn(claims, claimName)) return new Set();
  const parsed = RolesClaim.safeParse(claims[claimName]);
  return new Set(parsed.success ? parsed.data : []);
}

/** True when the token's roles include `role` exactly (case-sensitive, as Entra and Okta compare). */
export function hasRole(claims: Readonly<Record<string, unknown>>, claimName: string, role: AdminRole): boolean {
  return rolesOf(claims, claimName).has(role);
}
