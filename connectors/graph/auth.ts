/**
 * App-only tokens with the OAuth 2.0 client credentials grant, one cached token per resource
 * (Graph, and the SharePoint host for its REST API), refreshed five minutes before expiry.
 * https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
 */
import type { AuthenticationProvider } from '@microsoft/microsoft-graph-client';
import { AstryError } from '../../core/errors.ts';
import type { BoundFetch } from './http.ts';
import { TokenSchema } from './schemas.ts';

/** Where and as whom to ask for tokens. */
export interface ClientCredentials {
  /** `https://login.microsoftonline.com` (or the emulator's origin). */
  authorityUrl: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
}

const REFRESH_MARGIN_MS = 5 * 60_000;

export class TokenProvider {
  readonly #credentials: ClientCredentials;
  readonly #fetch: BoundFetch;
  readonly #cache = new Map<string, Promise<{ token: string; expiresAt: number }>>();

  constructor(credentials: ClientCredentials, fetch: BoundFetch) {
    this.#credentials = credentials;
    this.#fetch = fetch;
  }

  /** An access token for `scope` (e.g. `https://graph.microsoft.com/.default`). */
  async token(scope: string): Promise<string> {
    const cached = this.#cache.get(scope);
    if (cached) {
      const { token, expiresAt } = await cached;
      if (Date.now() < expiresAt - REFRESH_MARGIN_MS) return token;
    }
    const fresh = this.#request(scope);
    this.#cache.set(scope, fresh);
    fresh.catch(() => this.#cache.delete(scope));
    return (await fresh).token;
  }

  /** Forgets cached tokens (after a 401: the token was revoked). */
  reset(): void {
    this.#cache.clear();
  }

  /** The SDK's authentication provider for `scope`. */
  provider(scope: string): AuthenticationProvider {
    return { getAccessToken: () => this.token(scope) };
  }

  async #request(scope: string): Promise<{ token: string; expiresAt: number }> {
    const { authorityUrl, tenantId, clientId, clientSecret } = this.#credentials;
    const url = `${authorityUrl.replace(/\/$/, '')}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`;
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope });
    let response: Response;
    try {
      response = await this.#fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    } catch (cause) {
      throw new AstryError('SOURCE_UNAVAILABLE', `token endpoint unreachable: ${url}`, { cause });
    }
    if (response.status === 400 || response.status === 401) {
      throw new AstryError('SOURCE_AUTH_FAILED', `the token endpoint refused the client credentials of app ${clientId} (HTTP ${response.status})`);
    }
    if (!response.ok) throw new AstryError('SOURCE_UNAVAILABLE', `token endpoint answered HTTP ${response.status}`);
    const parsed = TokenSchema.safeParse(await response.json().catch(() => null));
    if (!parsed.success) throw new AstryError('SOURCE_BAD_DATA', 'token endpoint answered an unexpected body', { cause: parsed.error });
    return { token: parsed.data.access_token, expiresAt: Date.now() + parsed.data.expires_in * 1000 };
  }
}
