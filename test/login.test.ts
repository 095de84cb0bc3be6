import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { login, readStoredToken } from '../cli/commands/login.ts';
import { askApi } from '../cli/commands/query.ts';
import { isAstryError } from '../core/errors.ts';
import { DEFAULT_API_AUDIENCE } from '../fixtures/idp/people.ts';
import { startIdentityStack, type IdentityStack } from './fixtures-scim/identity-stack.ts';

/** The local IdP's public native client (fixtures/idp/server.ts), redirect http://127.0.0.1/callback on any port. */
const CLIENT_ID = 'astry-cli-rs256';

/** Follows the IdP's redirects with its cookies, as a browser does, up to the redirect to a /callback on 127.0.0.1. */
async function followToCallback(start: string): Promise<URL> {
  const jar = new Map<string, string>();
  let url = new URL(start);
  for (let hop = 0; hop < 12; hop++) {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    await res.arrayBuffer();
    const location = res.headers.get('location');
    if (location === null) throw new Error(`the IdP answered ${res.status} at ${url.pathname} without a redirect`);
    url = new URL(location, url);
    if (url.hostname === '127.0.0.1' && url.pathname === '/callback') return url;
  }
  throw new Error('no callback after 12 redirects');
}

/** The browser side of `astry login`: sign in at the IdP, then open the loopback callback (which completes the login). */
async function browse(start: string, opts: { tamperState?: boolean } = {}): Promise<number> {
  const callback = await followToCallback(start);
  if (opts.tamperState) callback.searchParams.set('state', 'forged');
  return (await fetch(callback)).status;
}

describe('astry login: authorization code + PKCE with a loopback redirect, against the real oidc-provider', () => {
  let s: IdentityStack;
  let dir: string;
  before(async () => {
    s = await startIdentityStack();
    dir = await mkdtemp(join(tmpdir(), 'astry-login-'));
  });
  after(async () => {
    await s?.close();
  });

  const options = (tokenFile: string, loginHint: string, onUrl: (url: string) => void) => ({
    issuer: s.idp.issuer, audience: DEFAULT_API_AUDIENCE, clientId: CLIENT_ID, loginHint, tokenFile, onUrl, timeoutMs: 20_000,
  });

  test('signs in, stores a verifiable token 0600 under a 0700 directory, and astry ask uses it', async () => {
    const tokenFile = join(dir, 'config', 'astry', 'token');
    let printed = '';
    let browser: Promise<number> | undefined;
    const result = await login(options(tokenFile, 'alice@ex.com', (url) => {
      printed = url;
      browser = browse(url);
    }));
    assert.equal(await browser, 200, 'the browser lands on the "signed in" page');
    const auth = new URL(printed);
    assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
    assert.match(auth.searchParams.get('redirect_uri') ?? '', /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    assert.equal(auth.searchParams.get('resource'), DEFAULT_API_AUDIENCE);
    assert.ok(result.expiresAt && result.expiresAt > new Date());

    assert.equal((await stat(tokenFile)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'config', 'astry'))).mode & 0o777, 0o700);
    const token = await readStoredToken(tokenFile);
    assert.ok(token);
    const verified = await s.verifier.verify(token);
    assert.equal(verified.claims.email, 'alice@ex.com');

    // Provisioned through SCIM, alice asks with the stored token; deactivated, she is refused.
    const created = await s.scim('POST', '/Users', { userName: 'alice@ex.com', emails: [{ value: 'alice@ex.com', type: 'work', primary: true }], active: true });
    assert.equal(created.status, 201);
    const answer = await askApi(s.apiUrl, token, 'what is new?');
    assert.equal(answer.mode, 'extractive');
    const id = String(Reflect.get(Object(created.body), 'id'));
    await s.scim('PATCH', `/Users/${id}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', value: { active: false } }] });
    await assert.rejects(askApi(s.apiUrl, token, 'what is new?'), /403/);
  });

  test('a callback with a forged state is refused and does not end the login; the real one does', async () => {
    const tokenFile = join(dir, 'forged', 'token');
    let forged: Promise<number> | undefined;
    let real: Promise<number> | undefined;
    const result = await login(options(tokenFile, 'bob@ex.com', (url) => {
      forged = browse(url, { tamperState: true });
      real = forged.then(() => browse(url));
    }));
    assert.equal(await forged, 400);
    assert.equal(await real, 200);
    assert.equal(result.tokenFile, tokenFile);
    assert.equal((await s.verifier.verify((await readStoredToken(tokenFile)) ?? '')).claims.email, 'bob@ex.com');
  });

  test('a sign-in the IdP refuses fails the login and stores nothing', async () => {
    const tokenFile = join(dir, 'refused', 'token');
    await assert.rejects(
      login(options(tokenFile, 'nobody@ex.com', (url) => void browse(url))),
      (err: unknown) => isAstryError(err, 'UNAUTHENTICATED') && /access_denied/.test(err.message),
    );
    assert.equal(await readStoredToken(tokenFile), undefined);
  });

  test('the token endpoint refuses a bogus code and a wrong PKCE verifier with the same error', async () => {
    const exchange = async (code: string, verifier: string) => {
      const res = await fetch(new URL('/token', s.idp.issuer), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:9/callback', code_verifier: verifier, client_id: CLIENT_ID, resource: DEFAULT_API_AUDIENCE }),
      });
      return { status: res.status, error: Reflect.get(Object(await res.json()), 'error') };
    };
    // A real code, obtained with a challenge whose verifier we then get wrong.
    const verifier = randomBytes(32).toString('base64url');
    const auth = new URL('/auth', s.idp.issuer);
    auth.search = new URLSearchParams({
      client_id: CLIENT_ID, response_type: 'code', redirect_uri: 'http://127.0.0.1:9/callback', scope: 'openid email astry.query',
      resource: DEFAULT_API_AUDIENCE, login_hint: 'alice@ex.com', state: 's',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    }).toString();
    const code = (await followToCallback(auth.toString())).searchParams.get('code') ?? '';
    assert.ok(code);
    const wrongVerifier = await exchange(code, randomBytes(32).toString('base64url'));
    const bogusCode = await exchange('not-a-code', verifier);
    assert.deepEqual(wrongVerifier, { status: 400, error: 'invalid_grant' });
    assert.deepEqual(bogusCode, wrongVerifier);
  });
});
