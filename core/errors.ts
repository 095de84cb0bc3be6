/** Stable codes for expected failures; the edges (CLI, HTTP, Slack) map them to messages. */
export type AstryErrorCode =
  | 'CONFIG_INVALID'
  | 'SOURCE_UNAVAILABLE'
  | 'SOURCE_RATE_LIMITED'
  | 'SOURCE_AUTH_FAILED'
  | 'SOURCE_BAD_DATA'
  | 'EXTRACT_FAILED'
  | 'UNSUPPORTED_TYPE'
  | 'TOO_LARGE'
  | 'DECRYPT_FAILED'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'BUDGET_EXHAUSTED'
  | 'TIMEOUT'
  | 'CONFINEMENT_UNAVAILABLE'
  /** A service Astry itself depends on (Temporal) is not configured or not reachable. */
  | 'UNAVAILABLE';

/** Base class of every expected Astry failure: a stable `code`, a message for humans, an optional cause. */
export class AstryError extends Error {
  readonly code: AstryErrorCode;

  constructor(code: AstryErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AstryError';
    this.code = code;
  }
}

/** True when `err` is an AstryError, optionally with one of the given codes. */
export function isAstryError(err: unknown, ...codes: AstryErrorCode[]): err is AstryError {
  return err instanceof AstryError && (codes.length === 0 || codes.includes(err.code));
}
