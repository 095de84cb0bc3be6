import { AstryError } from '../core/errors.ts';

/** The codes an identity check refuses with: 401 (no valid token) and 403 (valid token, no admissible user). */
export type IdentityErrorCode = 'UNAUTHENTICATED' | 'FORBIDDEN';

/**
 * What the caller is told. Deliberately one fixed sentence per code: which check failed (expired,
 * wrong audience, unknown user, deactivated user) is an oracle for an attacker, so it goes to `reason`.
 */
export const PUBLIC_MESSAGE: Readonly<Record<IdentityErrorCode, string>> = {
  UNAUTHENTICATED: 'authentication required',
  FORBIDDEN: 'access denied',
};

/** A refused identity: generic `message` for the caller, detailed `reason` (and `cause`) for logs only. */
export class IdentityError extends AstryError {
  /** Why the check failed, for server-side logs; never send it to the caller. */
  readonly reason: string;
  /** The canonical user refused, when there is one (a deactivated user): their audit entry is sealed under their key. */
  readonly principalId: number | undefined;

  constructor(code: IdentityErrorCode, reason: string, options?: { cause?: unknown; principalId?: number }) {
    super(code, PUBLIC_MESSAGE[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IdentityError';
    this.reason = reason;
    this.principalId = options?.principalId;
  }
}
