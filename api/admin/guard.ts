/**
 * Who may call /v1/admin, and the audit entry every call leaves. A caller is let through only when
 * all of these hold, in this order: a Bearer token verified like /v1/ask's (signature, issuer,
 * audience, algorithm, lifetime), an active canonical user for it, and the route's role in the
 * token's roles claim. Every refusal past the token is the same 403 body, whatever the route or
 * resource: nothing is looked up for a caller who is not authorized.
 */
import type pg from 'pg';
import type { AuditLog } from '../../audit/log.ts';
import type { SealedPersonal } from '../../audit/entry.ts';
import { personalAuditFields, pseudonymousActor } from '../../erasure/personal.ts';
import { sourceIdentifier } from '../../erasure/pseudonym.ts';
import { IdentityError } from '../../identity/errors.ts';
import { resolveUser } from '../../identity/users.ts';
import type { TokenVerifier } from '../../identity/verifier.ts';
import type { KeyProvider } from '../../vault/key-provider.ts';
import { hasRole, type AdminRole } from './roles.ts';

/** What the guard and the audit need. */
export interface GuardDeps {
  pool: pg.Pool;
  verifier: TokenVerifier;
  workspaceId: string;
  audit: AuditLog;
  keys: KeyProvider;
  /** The access-token claim holding roles. */
  rolesClaim: string;
}

/** One admin call as far as it is known: filled in by the guard and the handler, read by the audit. */
export interface AdminCall {
  /** Stable name of the action, e.g. `connection.pause`. */
  action: string;
  role: AdminRole;
  /** The IdP's `sub`, once the token verified. */
  subject?: string;
  /** The canonical user, once known (also a deactivated one). */
  principalId?: number;
  /** Why the call was refused, for the sealed part of the audit entry only. */
  refusal?: string;
  /** What the call acted on (a connection or erasure request id), when it names one. */
  target?: string;
  /** The caller's audit actor, computed once per call (the erasure's `requestedBy` uses it too). */
  who?: Promise<{ actor: string; personal?: SealedPersonal }>;
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]+)$/;

/** Lets the call through or throws IdentityError (401 or 403); records on `call` who was refused and why. */
export async function authorize(deps: GuardDeps, authorization: string | undefined, call: AdminCall): Promise<void> {
  try {
    const match = BEARER.exec(authorization ?? '');
    if (!match?.[1]) throw new IdentityError('UNAUTHENTICATED', 'no Bearer token');
    const token = await deps.verifier.verify(match[1]);
    call.subject = token.subject;
    const user = await resolveUser(deps.pool, deps.workspaceId, token);
    call.principalId = user.principalId;
    if (!hasRole(token.claims, deps.rolesClaim, call.role)) {
      throw new IdentityError('FORBIDDEN', `the token's ${deps.rolesClaim} claim lacks ${call.role}`);
    }
  } catch (err) {
    if (err instanceof IdentityError) {
      if (err.principalId !== undefined) call.principalId = err.principalId;
      call.refusal = err.reason;
    }
    throw err;
  }
}

/**
 * The caller as an audit actor, naming no one in clear: a canonical user's principal id and IdP
 * subject are sealed under their subject key (erasing them shreds it); an IdP subject that is no
 * user is a keyed pseudonym of `oidc:<sub>`; no valid token is `unauthenticated`.
 */
export function callerActor(deps: GuardDeps, call: AdminCall): Promise<{ actor: string; personal?: SealedPersonal }> {
  call.who ??= (async () => {
    if (call.principalId !== undefined) {
      return personalAuditFields(deps.pool, deps.keys, deps.workspaceId, call.principalId, {
        actor: `principal:${call.principalId}`, subject: call.subject, ...(call.refusal === undefined ? {} : { reason: call.refusal }),
      });
    }
    if (call.subject !== undefined) return { actor: await pseudonymousActor(deps.pool, deps.keys, deps.workspaceId, sourceIdentifier('oidc', call.subject)) };
    return { actor: 'unauthenticated' };
  })();
  return call.who;
}

/** The audit outcome of an answered status. */
export function outcomeOf(status: number): string {
  if (status < 400) return 'succeeded';
  const named: Record<number, string> = {
    400: 'invalid', 401: 'refused_unauthenticated', 403: 'refused_forbidden', 404: 'not_found', 409: 'conflict',
    422: 'rejected_by_source', 502: 'source_unavailable', 503: 'unavailable',
  };
  return named[status] ?? 'failed';
}

// Targets come from the URL: only id-shaped values are recorded, anything else (even an email) is not.
const ID_SHAPED = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Appends the call's entry: type `admin`, outcome from the status, action, route, target, the sealed actor. */
export async function recordCall(
  deps: GuardDeps,
  call: AdminCall,
  request: { method: string; route: string },
  status: number,
): Promise<void> {
  const who = await callerActor(deps, call);
  const target = call.target === undefined ? {} : { target: ID_SHAPED.test(call.target) ? call.target : '(not an id)' };
  await deps.audit.append({
    workspaceId: deps.workspaceId, type: 'admin', ...who, outcome: outcomeOf(status),
    details: { via: 'api', action: call.action, method: request.method, route: request.route, status, role: call.role, ...target },
  });
}
