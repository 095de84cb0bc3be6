import type { Queryable } from '../../db/pool.ts';
import { ScimError } from './errors.ts';
import { verifyScimToken } from './tokens.ts';

/** What a refused request is told: one sentence whatever failed (missing, malformed, unknown or revoked token). */
export const UNAUTHENTICATED = 'a valid SCIM bearer token is required';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * The workspace whose provisioning token authorizes this request, checked before anything else
 * so that no answer (404 or otherwise) can tell an unauthenticated caller whether a resource exists.
 */
export async function authenticate(db: Queryable, authorization: string | undefined): Promise<{ workspaceId: string; tokenId: string }> {
  const token = BEARER.exec(authorization ?? '')?.[1];
  const caller = token === undefined ? undefined : await verifyScimToken(db, token);
  if (caller === undefined) throw new ScimError(401, undefined, UNAUTHENTICATED);
  return caller;
}
