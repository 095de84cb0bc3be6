/** Directory users -> source identities and canonical user principals. Pure. */
import type { SourceIdentity } from '../types.ts';
import type { GoogleUser } from './schemas.ts';

/**
 * A Workspace user as a SourceIdentity. Why link by primaryEmail: it is an address in one of the
 * customer's verified domains, asserted by the customer's own directory, so `email:<lowercased>`
 * is the same person in Slack, Entra and the IdP. Suspended and archived users are inactive.
 */
export function toIdentity(user: GoogleUser): SourceIdentity {
  const email = user.primaryEmail.trim();
  return {
    sourceUserId: user.id,
    displayName: user.name.fullName?.trim() || email,
    email,
    kind: 'member',
    active: !user.suspended && !user.archived,
    user: { kind: 'user', key: `email:${email.toLowerCase()}` },
  };
}
