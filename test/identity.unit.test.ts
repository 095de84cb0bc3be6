import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJwks } from '../identity/jwks.ts';
import { TokenVerifier } from '../identity/verifier.ts';

test('a JWKS document keeps only public members of well-formed keys', () => {
  const jwks = parseJwks({
    keys: [
      { kty: 'RSA', kid: 'a', alg: 'RS256', use: 'sig', n: 'nnn', e: 'AQAB', d: 'PRIVATE', p: 'PRIVATE', x5c: ['cert'] },
      { kid: 'no-kty' },
      'not a key',
      { kty: 'EC', kid: 'b', crv: 'P-256', x: 'xxx', y: 'yyy' },
    ],
  });
  assert.deepEqual(jwks, {
    keys: [
      { kty: 'RSA', kid: 'a', alg: 'RS256', use: 'sig', n: 'nnn', e: 'AQAB' },
      { kty: 'EC', kid: 'b', crv: 'P-256', x: 'xxx', y: 'yyy' },
    ],
  });
  assert.equal(parseJwks({ keys: 'nope' }), undefined);
  assert.equal(parseJwks(null), undefined);
});

test('a verifier refuses to be configured with symmetric or unsafe options', () => {
  const base = { issuer: 'https://idp.test', audience: 'https://api.test', jwksUrl: 'https://idp.test/jwks' };
  // @ts-expect-error HS256 is not an accepted algorithm, and the runtime check agrees
  assert.throws(() => new TokenVerifier({ ...base, algorithms: ['HS256'] }), /algorithms/);
  assert.throws(() => new TokenVerifier({ ...base, algorithms: [] }), /algorithms/);
  assert.throws(() => new TokenVerifier({ ...base, clockToleranceSeconds: 3_600 }), /clockTolerance/);
  assert.throws(() => new TokenVerifier({ ...base, jwksUrl: 'file:///etc/passwd' }), /http/);
});
