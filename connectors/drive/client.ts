/**
 * The googleapis Drive v3 and Admin SDK Directory clients, built once per connector, and one call
 * helper that validates answers, backs off on quota errors and maps failures to AstryErrors.
 *
 * Why our own back-off: googleapis (gaxios) retries 429 but ignores Retry-After, and never retries
 * Drive's 403 `userRateLimitExceeded` / `rateLimitExceeded`, which Drive sends as often as 429
 * (https://developers.google.com/workspace/drive/api/guides/limits). So gaxios retries are off and
 * every call goes through truncated exponential back-off with jitter that treats both alike.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { admin, type admin_directory_v1 } from '@googleapis/admin';
import { drive, type drive_v3 } from '@googleapis/drive';
import { OAuth2Client } from 'google-auth-library';
import type { z } from 'zod';
import { AstryError, type AstryErrorCode } from '../../core/errors.ts';
import { ErrorBodySchema } from './schemas.ts';

/** Back-off of quota and transient errors. */
export interface DriveRetryOptions {
  /** Attempts per call, first included (default 8); then SOURCE_RATE_LIMITED / SOURCE_UNAVAILABLE. */
  maxAttempts?: number;
  /** First back-off, in ms (default 1000); doubles each attempt. */
  baseDelayMs?: number;
  /** Longest back-off, in ms (default 32000); a larger Retry-After is capped to it. */
  maxDelayMs?: number;
}

/** Options of the Drive + Directory clients. */
export interface DriveApiOptions {
  /** OAuth access token of the crawl account (drive.readonly, admin.directory.user.readonly, admin.directory.group.readonly). */
  accessToken: string;
  /** Root of both APIs, e.g. `https://www.googleapis.com/` (Drive) — an emulator's in tests. */
  rootUrl: string;
  /** Root of the Admin SDK (default: `rootUrl`; Google's is https://admin.googleapis.com/). */
  adminRootUrl?: string;
  retry?: DriveRetryOptions;
}

/** What a failed call tells us, read from the (gaxios) error without trusting its type. */
interface Failure {
  status: number | undefined;
  reason: string | undefined;
  retryAfterMs: number | undefined;
}

const RATE_REASONS = new Set(['userRateLimitExceeded', 'rateLimitExceeded', 'quotaExceeded', 'sharingRateLimitExceeded']);

function decode(data: unknown): unknown {
  if (data instanceof ArrayBuffer) data = Buffer.from(data);
  if (Buffer.isBuffer(data) || typeof data === 'string') {
    try {
      return JSON.parse(data.toString());
    } catch {
      return undefined;
    }
  }
  return data;
}

function failureOf(err: unknown): Failure {
  const response: unknown = typeof err === 'object' && err !== null ? Reflect.get(err, 'response') : undefined;
  const status: unknown = typeof response === 'object' && response !== null ? Reflect.get(response, 'status') : undefined;
  const data: unknown = typeof response === 'object' && response !== null ? Reflect.get(response, 'data') : undefined;
  const headers: unknown = typeof response === 'object' && response !== null ? Reflect.get(response, 'headers') : undefined;
  const body = ErrorBodySchema.safeParse(decode(data));
  const retryAfter = headers instanceof Headers ? Number(headers.get('retry-after') ?? Number.NaN) : Number.NaN;
  return {
    status: typeof status === 'number' ? status : undefined,
    reason: body.success ? body.data.error.errors[0]?.reason : undefined,
    retryAfterMs: Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter * 1000 : undefined,
  };
}

function isRateLimited(f: Failure): boolean {
  return f.status === 429 || (f.status === 403 && f.reason !== undefined && RATE_REASONS.has(f.reason));
}

function isTransient(f: Failure): boolean {
  return f.status === undefined || f.status === 408 || (f.status >= 500 && f.status <= 504);
}

function codeOf(f: Failure): AstryErrorCode {
  if (f.status === 401) return 'SOURCE_AUTH_FAILED';
  if (f.status === 404) return 'NOT_FOUND';
  if (f.status === 403) {
    if (f.reason === 'exportSizeLimitExceeded') return 'TOO_LARGE';
    if (f.reason === 'fileNotDownloadable' || f.reason === 'cannotExportFile') return 'UNSUPPORTED_TYPE';
    // Lost access to one item (insufficientFilePermissions, ...) reads like "gone" to the sync.
    if (f.reason === 'insufficientFilePermissions' || f.reason === 'appNotAuthorizedToFile') return 'NOT_FOUND';
    return 'SOURCE_AUTH_FAILED';
  }
  if (f.status === 400) return 'SOURCE_BAD_DATA';
  return 'SOURCE_UNAVAILABLE';
}

/** Drive and Directory clients whose answers are validated and whose failures are AstryErrors. */
export class DriveApi {
  readonly drive: drive_v3.Drive;
  readonly admin: admin_directory_v1.Admin;
  readonly #retry: Required<DriveRetryOptions>;
  /** Calls that were retried after a quota or transient error, for run reports and tests. */
  retries = 0;

  constructor(options: DriveApiOptions) {
    const auth = new OAuth2Client();
    // A preset token: no token endpoint round trip (the credential's owner refreshes it).
    auth.setCredentials({ access_token: options.accessToken });
    this.drive = drive({ version: 'v3', auth, rootUrl: options.rootUrl, retry: false });
    this.admin = admin({ version: 'directory_v1', auth, rootUrl: options.adminRootUrl ?? options.rootUrl, retry: false });
    this.#retry = { maxAttempts: 8, baseDelayMs: 1000, maxDelayMs: 32_000, ...options.retry };
  }

  /**
   * One API call (`name` for messages), retried with back-off on 429, 403 rate-limit reasons, 5xx
   * and network errors; the answer validated with `schema`.
   */
  async call<S extends z.ZodType>(name: string, request: () => Promise<{ data: unknown }>, schema: S): Promise<z.output<S>> {
    const data = await this.#withRetry(name, request);
    const parsed = schema.safeParse(data);
    if (parsed.success) return parsed.data;
    const problems = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new AstryError('SOURCE_BAD_DATA', `Drive ${name} returned an unexpected response: ${problems}`, { cause: parsed.error });
  }

  /** A call whose body is bytes (files.get alt=media, files.export). */
  async bytes(name: string, request: () => Promise<{ data: unknown }>): Promise<Buffer> {
    const data = await this.#withRetry(name, request);
    if (data instanceof ArrayBuffer) return Buffer.from(data);
    if (Buffer.isBuffer(data)) return data;
    if (typeof data === 'string') return Buffer.from(data, 'utf8');
    throw new AstryError('SOURCE_BAD_DATA', `Drive ${name} returned no bytes`);
  }

  async #withRetry(name: string, request: () => Promise<{ data: unknown }>): Promise<unknown> {
    const { maxAttempts, baseDelayMs, maxDelayMs } = this.#retry;
    for (let attempt = 1; ; attempt++) {
      try {
        return (await request()).data;
      } catch (err) {
        if (err instanceof AstryError) throw err;
        const failure = failureOf(err);
        const retryable = isRateLimited(failure) || isTransient(failure);
        if (!retryable || attempt >= maxAttempts) {
          const code = isRateLimited(failure) ? 'SOURCE_RATE_LIMITED' : codeOf(failure);
          const what = failure.status === undefined ? 'request failed' : `HTTP ${failure.status}${failure.reason ? ` ${failure.reason}` : ''}`;
          throw new AstryError(code, `Drive ${name}: ${what}${retryable ? ` after ${attempt} attempts` : ''}`, { cause: err });
        }
        // Google's recommendation: min(2^n * base + jitter, max); a Retry-After, when given, is a floor.
        const backoff = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1) + Math.random() * baseDelayMs);
        this.retries++;
        await sleep(Math.min(maxDelayMs, Math.max(backoff, failure.retryAfterMs ?? 0)));
      }
    }
  }
}
