/**
 * HTTPS for the Graph connector: one undici Agent per connector (trusting a private CA when the
 * connection names one: a private endpoint, or the emulator in tests), and the Graph SDK middleware
 * that sends the SDK's requests through it.
 */
import type { Context, Middleware } from '@microsoft/microsoft-graph-client';
import { Agent } from 'undici';

/** fetch bound to one connector's TLS settings. */
export type BoundFetch = (url: string, init?: RequestInit) => Promise<Response>;

/**
 * fetch through an Agent that trusts only `caPem` when given (a private CA pins the endpoint), else
 * the system roots. Why an Agent and not NODE_EXTRA_CA_CERTS: that is read once at process start
 * and would trust the CA for every connection of the process.
 */
export function boundFetch(caPem: string | undefined): { fetch: BoundFetch; close: () => Promise<void> } {
  const agent = new Agent({ connections: 16, ...(caPem ? { connect: { ca: caPem } } : {}) });
  return {
    fetch: (url, init = {}) => fetch(url, { ...init, dispatcher: agent }),
    close: () => agent.close(),
  };
}

/**
 * The last link of the SDK's middleware chain, in place of HTTPMessageHandler (which calls the
 * global fetch with no way to pass our Agent). Redirects are not followed: `/content` answers 302
 * to a pre-authenticated URL that must be fetched without our bearer token.
 */
export class BoundFetchHandler implements Middleware {
  readonly #fetch: BoundFetch;

  constructor(fetch: BoundFetch) {
    this.#fetch = fetch;
  }

  async execute(context: Context): Promise<void> {
    const url = typeof context.request === 'string' ? context.request : context.request.url;
    const { method, headers, body } = context.options ?? {};
    context.response = await this.#fetch(url, {
      method: method ?? 'GET',
      headers: new Headers(headers),
      ...(typeof body === 'string' ? { body } : {}),
      redirect: 'manual',
    });
  }
}
