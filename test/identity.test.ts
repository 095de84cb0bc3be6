import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader, exportSPKI, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { ensureWorkspace } from '../db/connections.ts';
import { ensurePrincipals } from '../db/principals.ts';
import { publicJwk, type IdpAlgorithm } from '../fixtures/idp/keys.ts';
import { DEFAULT_API_AUDIENCE, SEEDED_IDP_USERS, type IdpUser } from '../fixtures/idp/people.ts';
import { startIdp, type TestIdp } from '../fixtures/idp/server.ts';
import { EMAIL_DOMAIN } from '../fixtures/slack/ids.ts';
import { IdentityError, PUBLIC_MESSAGE, type IdentityErrorCode } from '../identity/errors.ts';
import { resolveUser } from '../identity/users.ts';
import { TokenVerifier, type TokenVerifierOptions } from '../identity/verifier.ts';
import { freshDatabase, type TestDatabase } from './support/database.ts';

const email = (name: string) => `${name}@${EMAIL_DOMAIN}`;
/** Known to the IdP, absent from Astry. */
const UMA: IdpUser = { sub: 'idp-uma', email: email('uma'), name: 'Uma Unknown' };
/** A principal in Astry, but the IdP has not verified the address. */
const EVE: IdpUser = { sub: 'idp-eve', email: email('eve'), name: 'Eve Unverified', emailVerified: false };

const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Asserts `work` is refused with `code`, the fixed public message, and a log reason matching `reason`. */
async function refused(work: Promise<unknown>, code: IdentityErrorCode, reason: RegExp): Promise<void> {
  await assert.rejects(work, (err: unknown) => {
    assert.ok(err instanceof IdentityError, `expected IdentityError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.message, PUBLIC_MESSAGE[code], 'the caller sees only the generic message');
    assert.match(err.reason, reason);
    return true;
  });
}

describe('identity: OIDC access tokens from a real IdP', () => {
  let db: TestDatabase;
  let idp: TestIdp;
  let workspaceId: string;
  let otherWorkspaceId: string;
  let ids: Map<string, number>;
  let verifier: TokenVerifier;

  const newVerifier = (extra: Partial<TokenVerifierOptions> = {}) =>
    new TokenVerifier({ issuer: idp.issuer, audience: DEFAULT_API_AUDIENCE, jwksUrl: idp.jwksUrl, jwksCooldownMs: 0, ...extra });

  /** Signs `claims` with the IdP's own current key (or `key`), as an attacker holding that key could. */
  async function forge(
    claims: JWTPayload,
    { alg = 'RS256', typ = 'at+jwt', kid, key }: { alg?: IdpAlgorithm; typ?: string; kid?: string; key?: CryptoKey } = {},
  ): Promise<string> {
    const jwk = idp.signingKey(alg);
    const signingKey = key ?? (await importJWK(jwk, alg));
    return new SignJWT(claims).setProtectedHeader({ alg, typ, kid: kid ?? jwk.kid }).sign(signingKey);
  }

  /** Claims of a genuine token for alice, valid now. */
  async function aliceClaims(): Promise<JWTPayload> {
    return decodeJwt(await idp.tokenFor(email('alice')));
  }

  before(async () => {
    db = await freshDatabase();
    workspaceId = await ensureWorkspace(db.pool, 'identity-test');
    otherWorkspaceId = await ensureWorkspace(db.pool, 'identity-test-other');
    const people = [...SEEDED_IDP_USERS, EVE];
    ids = await ensurePrincipals(
      db.pool,
      workspaceId,
      people.map((u) => ({ kind: 'user', key: `email:${u.email}` })),
      new Map(people.map((u) => [`user:email:${u.email}`, u.name])),
    );
    await db.pool.query(`UPDATE principals SET active = false WHERE workspace_id = $1 AND key = $2`, [workspaceId, `email:${email('dave')}`]);
    idp = await startIdp({ users: [...SEEDED_IDP_USERS, UMA, EVE], audience: DEFAULT_API_AUDIENCE });
    verifier = newVerifier();
  });

  after(async () => {
    await idp?.stop();
    await db?.drop();
  });

  test('a real token for alice, from the auth-code + PKCE flow, verifies and resolves to her principal', async () => {
    const token = await idp.tokenFor(email('alice'));
    const verified = await verifier.verify(token);
    assert.equal(verified.algorithm, 'RS256');
    assert.equal(verified.issuer, idp.issuer);
    assert.deepEqual(verified.audience, [DEFAULT_API_AUDIENCE]);
    const user = await resolveUser(db.pool, workspaceId, verified);
    assert.deepEqual(user, {
      principalId: ids.get(`user:email:${email('alice')}`),
      email: email('alice'),
      clearance: 2,
      displayName: 'Alice Martin',
    });
  });

  test('an ES256 token verifies too, and clearance defaults to 0 without the claim', async () => {
    const bob = await resolveUser(db.pool, workspaceId, await verifier.verify(await idp.tokenFor(email('bob'), { alg: 'ES256' })));
    assert.equal(bob.clearance, 1);
    const gina = await resolveUser(db.pool, workspaceId, await verifier.verify(await idp.tokenFor(email('gina'), { alg: 'ES256' })));
    assert.equal(gina.principalId, ids.get(`user:email:${email('gina')}`));
    assert.equal(gina.clearance, 0);
  });

  test('the email is matched case-insensitively to the canonical lowercased key', async () => {
    const token = await forge({ ...(await aliceClaims()), email: 'Alice@EX.com' });
    const user = await resolveUser(db.pool, workspaceId, await verifier.verify(token));
    assert.equal(user.principalId, ids.get(`user:email:${email('alice')}`));
    assert.equal(user.email, email('alice'));
  });

  describe('forged and misdirected tokens are refused as UNAUTHENTICATED', () => {
    test('wrong issuer, even signed with the IdP key', async () => {
      await refused(verifier.verify(await forge({ ...(await aliceClaims()), iss: 'http://127.0.0.1:1' })), 'UNAUTHENTICATED', /iss/);
      await refused(verifier.verify(await forge({ ...(await aliceClaims()), iss: `${idp.issuer}/` })), 'UNAUTHENTICATED', /iss/);
    });

    test('wrong audience (a token for another API)', async () => {
      await refused(verifier.verify(await forge({ ...(await aliceClaims()), aud: 'https://other.api.test' })), 'UNAUTHENTICATED', /aud/);
    });

    test('expired beyond the clock skew; a token expired within the skew still passes', async () => {
      const claims = await aliceClaims();
      await refused(verifier.verify(await forge({ ...claims, iat: now() - 600, exp: now() - 120 })), 'UNAUTHENTICATED', /exp/);
      const justExpired = await verifier.verify(await forge({ ...claims, iat: now() - 300, exp: now() - 10 }));
      assert.equal(justExpired.subject, 'idp-alice');
    });

    test('not yet valid (nbf, or iat in the future)', async () => {
      const claims = await aliceClaims();
      await refused(verifier.verify(await forge({ ...claims, nbf: now() + 120 })), 'UNAUTHENTICATED', /nbf/);
      await refused(verifier.verify(await forge({ ...claims, iat: now() + 600, exp: now() + 900 })), 'UNAUTHENTICATED', /iat/);
    });

    test('a token without exp', async () => {
      const { exp: _exp, ...claims } = await aliceClaims();
      await refused(verifier.verify(await forge(claims)), 'UNAUTHENTICATED', /exp/);
    });

    test('alg none', async () => {
      const enc = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const token = `${enc({ alg: 'none', typ: 'at+jwt', kid: idp.signingKey().kid })}.${enc(await aliceClaims())}.`;
      await refused(verifier.verify(token), 'UNAUTHENTICATED', /alg/i);
    });

    test('HS256 signed with the RSA public key bytes (algorithm confusion)', async () => {
      const jwk = idp.signingKey('RS256');
      const pem = await exportSPKI(await importJWK(publicJwk(jwk), 'RS256', { extractable: true }).then(toCryptoKey));
      for (const secret of [pem, JSON.stringify(publicJwk(jwk))]) {
        const token = await new SignJWT(await aliceClaims())
          .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: jwk.kid })
          .sign(new TextEncoder().encode(secret));
        await refused(verifier.verify(token), 'UNAUTHENTICATED', /alg/i);
      }
    });

    test('a kid that is not in the JWKS (attacker key)', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      await refused(verifier.verify(await forge(await aliceClaims(), { key: privateKey, kid: 'attacker-key' })), 'UNAUTHENTICATED', /JWKS|key/i);
    });

    test("the IdP key's kid on a signature by another key", async () => {
      const { privateKey } = await generateKeyPair('RS256');
      await refused(verifier.verify(await forge(await aliceClaims(), { key: privateKey })), 'UNAUTHENTICATED', /signature/i);
    });

    test('a tampered payload', async () => {
      const [header, , signature] = (await idp.tokenFor(email('bob'))).split('.');
      const payload = Buffer.from(JSON.stringify({ ...(await aliceClaims()), astry_clearance: 9 })).toString('base64url');
      await refused(verifier.verify(`${header}.${payload}.${signature}`), 'UNAUTHENTICATED', /signature/i);
    });

    test('a JWT of another type (typ JWT, e.g. an ID token) and garbage', async () => {
      await refused(verifier.verify(await forge(await aliceClaims(), { typ: 'JWT' })), 'UNAUTHENTICATED', /typ/);
      await refused(verifier.verify('not.a.jwt'), 'UNAUTHENTICATED', /./);
      await refused(verifier.verify(''), 'UNAUTHENTICATED', /missing/);
    });
  });

  describe('users Astry does not admit are refused as FORBIDDEN, indistinguishably', () => {
    test('a deactivated user and an unknown email get the same answer', async () => {
      const dave = verifier.verify(await idp.tokenFor(email('dave'))).then((t) => resolveUser(db.pool, workspaceId, t));
      await refused(dave, 'FORBIDDEN', /deactivated/);
      const uma = verifier.verify(await idp.tokenFor(UMA.email)).then((t) => resolveUser(db.pool, workspaceId, t));
      await refused(uma, 'FORBIDDEN', /no user principal/);
    });

    test('email_verified false', async () => {
      const eve = verifier.verify(await idp.tokenFor(EVE.email)).then((t) => resolveUser(db.pool, workspaceId, t));
      await refused(eve, 'FORBIDDEN', /not verified/);
    });

    test("alice's token does not resolve in a workspace she is not in", async () => {
      const token = await verifier.verify(await idp.tokenFor(email('alice')));
      await refused(resolveUser(db.pool, otherWorkspaceId, token), 'FORBIDDEN', /no user principal/);
    });

    test('a token without email, or with a malformed clearance', async () => {
      const { email: _email, ...noEmail } = await aliceClaims();
      const resolve = async (claims: JWTPayload) => resolveUser(db.pool, workspaceId, await verifier.verify(await forge(claims)));
      await refused(resolve(noEmail), 'FORBIDDEN', /no email/);
      await refused(resolve({ ...(await aliceClaims()), astry_clearance: -1 }), 'FORBIDDEN', /astry_clearance/);
      await refused(resolve({ ...(await aliceClaims()), astry_clearance: 'top-secret' }), 'FORBIDDEN', /astry_clearance/);
    });
  });

  describe('JWKS rotation and outages', () => {
    test('after key rotation, tokens signed with the new key verify, and old-key tokens still do', async () => {
      const oldToken = await idp.tokenFor(email('alice'));
      await verifier.verify(oldToken);
      const fetchesBefore = idp.jwksRequests;
      await idp.rotateKeys();
      const newToken = await idp.tokenFor(email('alice'));
      assert.notEqual(decodeProtectedHeader(newToken).kid, decodeProtectedHeader(oldToken).kid);
      const verified = await verifier.verify(newToken);
      assert.equal(verified.keyId, decodeProtectedHeader(newToken).kid);
      assert.equal(idp.jwksRequests, fetchesBefore + 1, 'the unknown kid caused exactly one refetch');
      await verifier.verify(oldToken);
      const es = await idp.tokenFor(email('bob'), { alg: 'ES256' });
      assert.equal((await verifier.verify(es)).algorithm, 'ES256');
    });

    test('a flood of unknown kids causes no more than one JWKS fetch per cooldown', async () => {
      const limited = newVerifier({ jwksCooldownMs: 60_000 });
      await limited.verify(await idp.tokenFor(email('alice')));
      const fetches = idp.jwksRequests;
      const { privateKey } = await generateKeyPair('RS256');
      for (let i = 0; i < 5; i++) {
        const token = await forge(await aliceClaims(), { key: privateKey, kid: `attacker-${i}` });
        await refused(limited.verify(token), 'UNAUTHENTICATED', /key/i);
      }
      assert.equal(idp.jwksRequests, fetches, 'still cooling down from the first fetch: no refetch');
    });

    test('with the JWKS endpoint down, cached keys still verify and an unknown kid fails closed', async () => {
      // maxAge 0: every verification wants a refresh, so this proves the stale set is served on failure.
      const outage = newVerifier({ jwksCacheMaxAgeMs: 0 });
      const cached = await idp.tokenFor(email('alice'));
      await outage.verify(cached);
      idp.setJwksAvailable(false);
      await sleep(5); // let the fetched set age past maxAge 0
      try {
        const fetches = idp.jwksRequests;
        const user = await resolveUser(db.pool, workspaceId, await outage.verify(cached));
        assert.equal(user.email, email('alice'));
        assert.ok(idp.jwksRequests > fetches, 'the refresh was attempted and got 503');

        const { privateKey } = await generateKeyPair('ES256');
        await refused(outage.verify(await forge(await aliceClaims(), { alg: 'ES256', key: privateKey, kid: 'attacker' })), 'UNAUTHENTICATED', /jwks unavailable.*503/);

        // The IdP rotates during the outage: its new tokens cannot be checked yet, so they are refused.
        await idp.rotateKeys();
        const rotated = await idp.tokenFor(email('alice'));
        await refused(outage.verify(rotated), 'UNAUTHENTICATED', /jwks unavailable/);

        // A cache past its max staleness is not trusted during an outage either.
        const strict = newVerifier({ jwksCacheMaxAgeMs: 0, jwksMaxStaleMs: 0 });
        idp.setJwksAvailable(true);
        await strict.verify(rotated);
        idp.setJwksAvailable(false);
        await sleep(5);
        await refused(strict.verify(rotated), 'UNAUTHENTICATED', /jwks unavailable/);

        idp.setJwksAvailable(true);
        assert.equal((await outage.verify(rotated)).subject, 'idp-alice', 'recovers once the JWKS is back');
      } finally {
        idp.setJwksAvailable(true);
      }
    });
  });
});

/** importJWK may return a CryptoKey or raw bytes (oct keys); RSA keys are always CryptoKeys. */
function toCryptoKey(key: CryptoKey | Uint8Array): CryptoKey {
  if (key instanceof Uint8Array) throw new TypeError('expected an asymmetric key');
  return key;
}
