/**
 * Maps what @slack/web-api throws to AstryError codes, by the SDK's error `code` and Slack's
 * platform error string (https://docs.slack.dev/reference/methods, "Errors" of each method) —
 * never by matching message text.
 */
import { ErrorCode, SlackError, type WebAPICallError } from '@slack/web-api';
import type { z } from 'zod';
import { AstryError, type AstryErrorCode } from '../../core/errors.ts';

/** What the observing fetch saw of the last HTTP response of one call (see client.ts). */
export interface CallObservation {
  status: number | undefined;
  /** Body of the last HTTP 200 response, kept to tell a platform error from a body that is not JSON. */
  body: string | undefined;
}

/** The token is bad, revoked, or lacks a scope: an admin must act. */
const AUTH_ERRORS = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'missing_scope',
  'no_permission',
  'not_allowed_token_type',
  'team_access_not_granted',
  'ekm_access_denied',
  'access_denied',
]);

/** The item is gone or out of the bot's reach: per item, the caller decides (skip or delete). */
const NOT_FOUND_ERRORS = new Set([
  'channel_not_found',
  'not_in_channel',
  'thread_not_found',
  'user_not_found',
  'users_not_found',
  'file_not_found',
  'file_deleted',
]);

/** Slack's own trouble: worth retrying later. */
const UNAVAILABLE_ERRORS = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout']);

const CALL_ERROR_CODES: ReadonlySet<string> = new Set([
  ErrorCode.PlatformError,
  ErrorCode.RequestError,
  ErrorCode.HTTPError,
  ErrorCode.RateLimitedError,
]);

function isCallError(err: unknown): err is WebAPICallError {
  return err instanceof SlackError && CALL_ERROR_CODES.has(err.code);
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function platformCode(error: string): AstryErrorCode {
  if (AUTH_ERRORS.has(error)) return 'SOURCE_AUTH_FAILED';
  if (NOT_FOUND_ERRORS.has(error)) return 'NOT_FOUND';
  if (UNAVAILABLE_ERRORS.has(error)) return 'SOURCE_UNAVAILABLE';
  if (error === 'ratelimited') return 'SOURCE_RATE_LIMITED';
  // Any other refusal (invalid_cursor, invalid_arguments, ...) is a non-transient disagreement with
  // Slack about the exchange itself: retrying will not help, an engineer must look.
  return 'SOURCE_BAD_DATA';
}

/**
 * The AstryError for a failed call of `method`, or `err` itself when it is not an expected failure
 * (a bug in our code must surface as such).
 */
export function toAstryError(err: unknown, method: string, seen: CallObservation): unknown {
  if (err instanceof AstryError) return err;
  // With rejectRateLimitedCalls=false the WebClient waits Retry-After and retries a 429 itself; when
  // its retries run out it throws a RequestError wrapping a plain Error (or, for a 429 without a
  // usable Retry-After, the plain Error alone). Only the HTTP status it last saw says "rate limited".
  if (seen.status === 429 && !(isCallError(err) && err.code === ErrorCode.PlatformError)) {
    return new AstryError('SOURCE_RATE_LIMITED', `Slack ${method}: still rate limited after retries`, { cause: err });
  }
  if (!isCallError(err)) return err;
  switch (err.code) {
    case ErrorCode.PlatformError: {
      if (seen.body !== undefined && !isJson(seen.body)) {
        return new AstryError('SOURCE_BAD_DATA', `Slack ${method} answered with a body that is not JSON`, { cause: err });
      }
      const error = typeof err.data.error === 'string' ? err.data.error : 'unknown_error';
      return new AstryError(platformCode(error), `Slack ${method} failed: ${error}`, { cause: err });
    }
    case ErrorCode.HTTPError: {
      const code = err.statusCode === 401 || err.statusCode === 403 ? 'SOURCE_AUTH_FAILED' : 'SOURCE_UNAVAILABLE';
      return new AstryError(code, `Slack ${method} answered HTTP ${err.statusCode}`, { cause: err });
    }
    case ErrorCode.RateLimitedError:
      return new AstryError('SOURCE_RATE_LIMITED', `Slack ${method}: rate limited (retry after ${err.retryAfter}s)`, {
        cause: err,
      });
    case ErrorCode.RequestError:
      return new AstryError('SOURCE_UNAVAILABLE', `Slack ${method}: request failed: ${err.original.message}`, {
        cause: err,
      });
  }
}

/** Validates a response; a shape we do not understand is SOURCE_BAD_DATA naming the first offending paths. */
export function parseResponse<S extends z.ZodType>(schema: S, raw: unknown, method: string): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
  throw new AstryError('SOURCE_BAD_DATA', `Slack ${method} returned an unexpected response: ${problems}`, {
    cause: result.error,
  });
}
