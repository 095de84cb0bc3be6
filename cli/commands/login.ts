/**
 * `astry login`: OAuth 2.0 authorization code + PKCE (RFC 7636) for a native app with a loopback
 * redirect (RFC 8252 §7.3): the CLI listens on http://127.0.0.1:<port>/callback, prints the IdP's
 * authorization URL for the user to open, exchanges the code for an access token for Astry's API
 * (RFC 8707 `resource`) and stores it in ~/.config/astry/token (0600) for `astry ask`.
 * Endpoints come from the IdP's discovery document (OpenID Connect Discovery 1.0).
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { AstryError } from '../../core/errors.ts';

/** Options of login; durations in milliseconds. */
export interface LoginOptions {
  /** The IdP's issuer; its discovery document is `<issuer>/.well-known/openid-configuration`. */
  issuer: string;
  /** Resource identifier of Astry's API: the token's audience. */
  audience: string;
  /** The public (native) client registered at the IdP for the CLI, with redirect http://127.0.0.1/callback. */
  clientId: string;
  /** Scopes (default DEFAULT_SCOPE: OpenID, email, profile and Astry's API scope `astry.query`). */
  scope?: string;
  /** Loopback port (default 0: any free port; the IdP must allow any port on 127.0.0.1, as RFC 8252 asks). */
  port?: number;
  /** Passed as `login_hint` (pre-fills the user name; the local test IdP signs in whoever it names). */
  loginHint?: string;
  /** Where the token is written (default defaultTokenFile()). */
  tokenFile?: string;
  /** Receives the URL the user must open (default: printed to stdout). */
  onUrl?: (url: string) => void;
  /** How long to wait for the browser to come back (default 300_000). */
  timeoutMs?: number;
}

/** The outcome of a sign-in (the token itself is in the file, never printed). */
export interface LoginResult {
  tokenFile: string;
  expiresAt: Date | undefined;
}

/** What the CLI asks for: who the user is (email) and Astry's API scope as registered at the IdP. */
export const DEFAULT_SCOPE = 'openid email profile astry.query';

const Discovery = z.object({ issuer: z.string(), authorization_endpoint: z.url(), token_endpoint: z.url() });
const TokenResponse = z.object({ access_token: z.string().min(1), token_type: z.string(), expires_in: z.number().optional() });
const TokenError = z.object({ error: z.string(), error_description: z.string().optional() });

/** ~/.config/astry/token, or $XDG_CONFIG_HOME/astry/token. */
export function defaultTokenFile(): string {
  const base = process.env.XDG_CONFIG_HOME && process.env.XDG_CONFIG_HOME !== '' ? process.env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'astry', 'token');
}

/** The token `astry login` stored, or undefined when there is none. */
export async function readStoredToken(file: string = defaultTokenFile()): Promise<string | undefined> {
  try {
    const token = (await readFile(file, 'utf8')).trim();
    return token === '' ? undefined : token;
  } catch (err) {
    if (typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Writes the token readable by its owner only: a 0700 directory, a 0600 file replaced atomically. */
async function storeToken(file: string, token: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${token}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(temp, 0o600);
  await rename(temp, file);
}

async function discover(issuer: string): Promise<z.infer<typeof Discovery>> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) }).catch((err: unknown) => {
    throw new AstryError('UNAUTHENTICATED', `the IdP at ${issuer} is unreachable`, { cause: err });
  });
  const doc = Discovery.safeParse(await res.json().catch(() => undefined));
  if (!res.ok || !doc.success) throw new AstryError('UNAUTHENTICATED', `no OpenID configuration at ${url}`);
  // RFC 8414 §3.3: the document must name the issuer we asked.
  if (doc.data.issuer !== issuer) throw new AstryError('UNAUTHENTICATED', `the IdP calls itself ${doc.data.issuer}, not ${issuer}`);
  return doc.data;
}

const PAGE = (message: string) => `<!doctype html><meta charset="utf-8"><title>Astry</title><p>${message}</p>`;

/** Waits for the browser's redirect to /callback carrying our `state`; other requests are refused and ignored. */
async function awaitCallback(server: http.Server, state: string, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new AstryError('TIMEOUT', `no sign-in within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      // Only the redirect carrying our state counts: a page poking the port cannot end the login.
      if (req.method !== 'GET' || url.pathname !== '/callback' || url.searchParams.get('state') !== state) {
        res.writeHead(url.pathname === '/callback' ? 400 : 404, { 'content-type': 'text/html' }).end(PAGE('Not a sign-in for this terminal.'));
        return;
      }
      clearTimeout(timer);
      const error = url.searchParams.get('error');
      const code = url.searchParams.get('code');
      if (error !== null || code === null) {
        res.writeHead(400, { 'content-type': 'text/html' }).end(PAGE('Sign-in failed; see your terminal.'));
        reject(new AstryError('UNAUTHENTICATED', `the IdP refused the sign-in: ${error ?? 'no code'} ${url.searchParams.get('error_description') ?? ''}`.trim()));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE('Signed in to Astry. You can close this tab.'));
      resolve(code);
    });
  });
}

/** Signs in through the IdP in a browser and stores an access token for Astry's API. */
export async function login(opts: LoginOptions): Promise<LoginResult> {
  const idp = await discover(opts.issuer);
  const server = http.createServer();
  server.listen(opts.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('loopback server has no port');
    const redirectUri = `http://127.0.0.1:${address.port}/callback`;
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(16).toString('base64url');
    const auth = new URL(idp.authorization_endpoint);
    auth.search = new URLSearchParams({
      client_id: opts.clientId,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: opts.scope ?? DEFAULT_SCOPE,
      resource: opts.audience,
      state,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      ...(opts.loginHint === undefined ? {} : { login_hint: opts.loginHint }),
    }).toString();
    const code = awaitCallback(server, state, opts.timeoutMs ?? 300_000);
    (opts.onUrl ?? ((url: string) => console.log(`Open this URL in your browser to sign in to Astry:\n\n  ${url}\n`)))(auth.toString());

    const res = await fetch(idp.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: await code,
        redirect_uri: redirectUri,
        code_verifier: verifier,
        client_id: opts.clientId,
        resource: opts.audience,
      }),
      signal: AbortSignal.timeout(10_000),
    });
    const body: unknown = await res.json().catch(() => undefined);
    if (!res.ok) {
      const error = TokenError.safeParse(body);
      throw new AstryError('UNAUTHENTICATED', `the IdP refused the code: ${error.success ? error.data.error : `HTTP ${res.status}`}`);
    }
    const token = TokenResponse.safeParse(body);
    if (!token.success || token.data.token_type.toLowerCase() !== 'bearer') throw new AstryError('UNAUTHENTICATED', 'the IdP answered without a bearer access token');
    const tokenFile = opts.tokenFile ?? defaultTokenFile();
    await storeToken(tokenFile, token.data.access_token);
    return { tokenFile, expiresAt: token.data.expires_in === undefined ? undefined : new Date(Date.now() + token.data.expires_in * 1000) };
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

/** Options of `astry login` as commander parses them. */
export interface LoginCommandOptions {
  clientId: string;
  scope: string;
  port: string;
  loginHint?: string;
}

/** `astry login`: sign in against ASTRY_OIDC_ISSUER for ASTRY_OIDC_AUDIENCE and say where the token went. */
export async function runLogin(env: { ASTRY_OIDC_ISSUER: string; ASTRY_OIDC_AUDIENCE: string }, opts: LoginCommandOptions): Promise<void> {
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new AstryError('CONFIG_INVALID', '--port must be a TCP port (0: any free port)');
  const result = await login({
    issuer: env.ASTRY_OIDC_ISSUER, audience: env.ASTRY_OIDC_AUDIENCE, clientId: opts.clientId, scope: opts.scope, port,
    ...(opts.loginHint === undefined ? {} : { loginHint: opts.loginHint }),
  });
  const until = result.expiresAt === undefined ? '' : ` (valid until ${result.expiresAt.toISOString()})`;
  console.log(`Signed in. Token stored in ${result.tokenFile}${until}; astry ask uses it.`);
}
