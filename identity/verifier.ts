import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { IdentityError } from './errors.ts';
import { JwksCache, JwksFetchError } from './jwks.ts';

/** The signature algorithms Astry accepts: asymmetric only, so a public key can never be used as an HMAC secret. */
export type SigningAlgorithm = 'RS256' | 'ES256';
const SUPPORTED: readonly SigningAlgorithm[] = ['RS256', 'ES256'];

/** Options of a TokenVerifier. */
export interface TokenVerifierOptions {
  /** The IdP's issuer identifier, compared exactly with `iss` (no trailing-slash or case folding). */
  issuer: string;
  /** Our API's resource identifier, which must be one of the token's `aud` values. */
  audience: string;
  /** The IdP's `jwks_uri`. */
  jwksUrl: string;
  /** Accepted `alg` values (default both RS256 and ES256); anything else, `none` and HS* included, is refused. */
  algorithms?: SigningAlgorithm[];
  /** Allowed clock skew for exp/nbf/iat, in seconds (default 30, at most 300). */
  clockToleranceSeconds?: number;
  /** Age after which the cached JWKS is refetched, in milliseconds (default 600_000 = 10 min). */
  jwksCacheMaxAgeMs?: number;
  /** Least time between JWKS fetches caused by unknown `kid`s or failures, in milliseconds (default 30_000). */
  jwksCooldownMs?: number;
  /** How long past its max age a cached JWKS is served while the endpoint fails, in milliseconds (default 24 h). */
  jwksMaxStaleMs?: number;
  /**
   * Required `typ` header (default 'at+jwt', RFC 9068, which oidc-provider sets on JWT access tokens;
   * it also stops an ID token being replayed as an access token). `false` disables the check for
   * IdPs that do not set it.
   */
  typ?: string | false;
  /** Oldest acceptable token by `iat`, in seconds (default 86_400); also makes a future `iat` fail. */
  maxTokenAgeSeconds?: number;
}

/** A token whose signature, issuer, audience, algorithm and validity window were checked. */
export interface VerifiedToken {
  /** `sub`: the user's id at the IdP. */
  subject: string;
  issuer: string;
  audience: string[];
  algorithm: SigningAlgorithm;
  keyId: string | undefined;
  issuedAt: Date;
  expiresAt: Date;
  /** Every claim of the payload; only the registered ones above were validated. */
  claims: JWTPayload;
}

/** Longest token we parse at all: bounds work on garbage input (real access tokens are ~1-2 KB). */
const MAX_TOKEN_LENGTH = 16 * 1024;

/** Verifies OIDC/OAuth JWT access tokens against one IdP. Failures are IdentityError('UNAUTHENTICATED'). */
export class TokenVerifier {
  readonly #issuer: string;
  readonly #audience: string;
  readonly #algorithms: SigningAlgorithm[];
  readonly #clockTolerance: number;
  readonly #typ: string | undefined;
  readonly #maxTokenAge: number;
  readonly #jwks: JwksCache;

  constructor(opts: TokenVerifierOptions) {
    if (opts.issuer === '') throw new TypeError('issuer is required');
    if (opts.audience === '') throw new TypeError('audience is required');
    const algorithms = opts.algorithms ?? [...SUPPORTED];
    if (algorithms.length === 0 || algorithms.some((a) => !SUPPORTED.includes(a))) {
      throw new TypeError(`algorithms must be a non-empty subset of ${SUPPORTED.join(', ')}`);
    }
    const tolerance = opts.clockToleranceSeconds ?? 30;
    if (!Number.isFinite(tolerance) || tolerance < 0 || tolerance > 300) throw new TypeError('clockToleranceSeconds must be within 0..300');
    const maxAge = opts.maxTokenAgeSeconds ?? 86_400;
    if (!Number.isFinite(maxAge) || maxAge <= 0) throw new TypeError('maxTokenAgeSeconds must be positive');
    this.#issuer = opts.issuer;
    this.#audience = opts.audience;
    this.#algorithms = algorithms;
    this.#clockTolerance = tolerance;
    this.#typ = opts.typ === false ? undefined : (opts.typ ?? 'at+jwt');
    this.#maxTokenAge = maxAge;
    this.#jwks = new JwksCache({
      url: opts.jwksUrl,
      maxAgeMs: opts.jwksCacheMaxAgeMs,
      cooldownMs: opts.jwksCooldownMs,
      maxStaleMs: opts.jwksMaxStaleMs,
    });
  }

  /** Checks `token` (the bare JWT, without "Bearer "); throws IdentityError('UNAUTHENTICATED') with a `reason` for logs. */
  async verify(token: string): Promise<VerifiedToken> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      throw new IdentityError('UNAUTHENTICATED', 'token missing or oversized');
    }
    try {
      const { payload, protectedHeader } = await jwtVerify(token, this.#jwks.getKey, {
        issuer: this.#issuer,
        audience: this.#audience,
        algorithms: this.#algorithms,
        clockTolerance: this.#clockTolerance,
        maxTokenAge: this.#maxTokenAge,
        requiredClaims: ['sub', 'exp', 'iat'],
        ...(this.#typ === undefined ? {} : { typ: this.#typ }),
      });
      const algorithm = SUPPORTED.find((a) => a === protectedHeader.alg);
      // jose enforced the allow-list and the presence of these claims; the checks narrow the types.
      if (algorithm === undefined || payload.sub === undefined || payload.iat === undefined || payload.exp === undefined) {
        throw new IdentityError('UNAUTHENTICATED', 'verified token lacks alg, sub, iat or exp');
      }
      return {
        subject: payload.sub,
        issuer: this.#issuer,
        audience: typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []),
        algorithm,
        keyId: protectedHeader.kid,
        issuedAt: new Date(payload.iat * 1000),
        expiresAt: new Date(payload.exp * 1000),
        claims: payload,
      };
    } catch (err) {
      if (err instanceof IdentityError) throw err;
      if (err instanceof joseErrors.JOSEError || err instanceof JwksFetchError) {
        throw new IdentityError('UNAUTHENTICATED', reasonOf(err), { cause: err });
      }
      throw err;
    }
  }
}

/** A log line naming the failed check, e.g. `ERR_JWT_CLAIM_VALIDATION_FAILED aud: unexpected "aud" claim value`. */
function reasonOf(err: joseErrors.JOSEError | JwksFetchError): string {
  if (err instanceof JwksFetchError) return `jwks unavailable: ${err.message}`;
  if (err instanceof joseErrors.JWTClaimValidationFailed || err instanceof joseErrors.JWTExpired) {
    return `${err.code} ${err.claim}: ${err.message}`;
  }
  return `${err.code}: ${err.message}`;
}
