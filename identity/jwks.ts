import { createLocalJWKSet, errors as joseErrors, type CryptoKey, type FlattenedJWSInput, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import { z } from 'zod';

/** Options of a JwksCache; every duration is in milliseconds. */
export interface JwksCacheOptions {
  /** The IdP's `jwks_uri`. */
  url: string;
  /** Age after which the key set is refetched before use (default 600_000 = 10 min). */
  maxAgeMs?: number;
  /**
   * Least time between two fetch attempts triggered by an unknown `kid` or a failing refresh
   * (default 30_000). Bounds how often a stream of forged tokens can make us call the IdP.
   */
  cooldownMs?: number;
  /**
   * How long past `maxAgeMs` a key set may still be used while the IdP's JWKS endpoint is failing
   * (default 86_400_000 = 24 h). Beyond that verification fails closed.
   */
  maxStaleMs?: number;
  /** Timeout of one JWKS request (default 5_000). */
  timeoutMs?: number;
}

/** The JWKS endpoint could not be read (network, status, or body); `message` is for logs. */
export class JwksFetchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JwksFetchError';
  }
}

// Only public members of signature keys are kept: anything else in the document (private parts
// published by mistake, x5c chains) is dropped rather than trusted.
const JwkSchema = z.object({
  kty: z.string(),
  kid: z.string().optional(),
  alg: z.string().optional(),
  use: z.string().optional(),
  key_ops: z.array(z.string()).optional(),
  n: z.string().optional(),
  e: z.string().optional(),
  crv: z.string().optional(),
  x: z.string().optional(),
  y: z.string().optional(),
});
const JwksSchema = z.object({ keys: z.array(z.unknown()) });

/** Parses a JWKS document (undefined if it is not one), skipping individual keys that are malformed. */
export function parseJwks(body: unknown): JSONWebKeySet | undefined {
  const doc = JwksSchema.safeParse(body);
  if (!doc.success) return undefined;
  const keys = doc.data.keys.flatMap((k) => {
    const parsed = JwkSchema.safeParse(k);
    return parsed.success ? [parsed.data] : [];
  });
  return { keys };
}

function duration(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0) throw new TypeError(`${name} must be a non-negative number of milliseconds`);
  return v;
}

type LocalSet = ReturnType<typeof createLocalJWKSet>;

/**
 * A JWKS cache for one IdP. Why not jose's createRemoteJWKSet alone: it throws as soon as the cached
 * set is older than its max age and the refetch fails, so a JWKS outage would lock everyone out even
 * though the keys we hold are still the IdP's keys. Here a failed refresh keeps serving the last good
 * set (up to `maxStaleMs`), while an unknown `kid` still triggers a rate-limited refetch (key rotation)
 * and fails closed when that refetch fails.
 */
export class JwksCache {
  readonly #url: URL;
  readonly #maxAgeMs: number;
  readonly #cooldownMs: number;
  readonly #maxStaleMs: number;
  readonly #timeoutMs: number;
  #local: LocalSet | undefined;
  #fetchedAt = 0;
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #pending: Promise<LocalSet> | undefined;
  /** The last refresh failure, kept for diagnostics while a stale set is served. */
  lastError: Error | undefined;

  constructor(opts: JwksCacheOptions) {
    this.#url = new URL(opts.url);
    if (this.#url.protocol !== 'https:' && this.#url.protocol !== 'http:') throw new TypeError('jwks url must be http(s)');
    this.#maxAgeMs = duration('maxAgeMs', opts.maxAgeMs, 600_000);
    this.#cooldownMs = duration('cooldownMs', opts.cooldownMs, 30_000);
    this.#maxStaleMs = duration('maxStaleMs', opts.maxStaleMs, 86_400_000);
    this.#timeoutMs = duration('timeoutMs', opts.timeoutMs, 5_000);
  }

  /** A jose key resolver: the verification key for this JWS header. */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    const local = await this.#current();
    try {
      return await local(header, token);
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey) || this.#coolingDown()) throw err;
      // Unknown kid: the IdP may have rotated. One refetch; if it fails, fail closed.
      return (await this.#refresh())(header, token);
    }
  };

  /** The set to use now: refreshed when older than maxAge, stale while refreshes fail (up to maxStale). */
  async #current(): Promise<LocalSet> {
    const local = this.#local;
    if (local !== undefined && Date.now() - this.#fetchedAt <= this.#maxAgeMs) return local;
    const usable = () => local !== undefined && Date.now() - this.#fetchedAt <= this.#maxAgeMs + this.#maxStaleMs;
    if (this.#coolingDown() && this.#pending === undefined) {
      // A refresh failed moments ago: do not hammer the IdP, answer from what we have.
      if (local !== undefined && usable()) return local;
      throw this.lastError ?? new JwksFetchError(`JWKS ${this.#url.href} not loaded`);
    }
    try {
      return await this.#refresh();
    } catch (err) {
      if (local !== undefined && usable()) return local;
      throw err;
    }
  }

  #coolingDown(): boolean {
    return Date.now() - this.#attemptedAt < this.#cooldownMs;
  }

  /** Fetches the set once, sharing one request between concurrent callers. */
  #refresh(): Promise<LocalSet> {
    this.#pending ??= this.#fetch().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #fetch(): Promise<LocalSet> {
    this.#attemptedAt = Date.now();
    try {
      const res = await fetch(this.#url, {
        headers: { accept: 'application/jwk-set+json, application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      if (!res.ok) throw new JwksFetchError(`JWKS ${this.#url.href} answered HTTP ${res.status}`);
      let body: unknown;
      try {
        body = await res.json();
      } catch (err) {
        throw new JwksFetchError(`JWKS ${this.#url.href} is not JSON`, { cause: err });
      }
      const jwks = parseJwks(body);
      if (jwks === undefined) throw new JwksFetchError(`JWKS ${this.#url.href} has no keys array`);
      const local = createLocalJWKSet(jwks);
      this.#local = local;
      this.#fetchedAt = Date.now();
      this.lastError = undefined;
      return local;
    } catch (err) {
      const wrapped = err instanceof JwksFetchError ? err : new JwksFetchError(`JWKS ${this.#url.href} unreachable`, { cause: err });
      this.lastError = wrapped;
      throw wrapped;
    }
  }
}
