/**
 * The Graph SDK client, built once per connector, and SharePoint REST calls: validated answers,
 * full nextLink paging, and every failure mapped to an AstryError by HTTP status (Graph's error
 * `code` strings vary by workload; the status is the stable contract).
 * https://learn.microsoft.com/en-us/graph/errors
 */
import { Client, GraphError, ResponseType, RetryHandler, RetryHandlerOptions, AuthenticationHandler } from '@microsoft/microsoft-graph-client';
import type { z } from 'zod';
import { AstryError, type AstryErrorCode } from '../../core/errors.ts';
import type { TokenProvider } from './auth.ts';
import { BoundFetchHandler, type BoundFetch } from './http.ts';

/** Retry of throttled (429) and unavailable (503/504) calls; Graph's Retry-After always wins over `delaySeconds`. */
export interface GraphRetry {
  /** Retries per call before the call fails with SOURCE_RATE_LIMITED (default 6, at most 10). */
  maxRetries: number;
  /** Back-off base when no Retry-After is sent, in seconds (default 2). */
  delaySeconds: number;
}

export const DEFAULT_GRAPH_RETRY: GraphRetry = { maxRetries: 6, delaySeconds: 2 };

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';

function codeOf(status: number): AstryErrorCode {
  if (status === 401 || status === 403) return 'SOURCE_AUTH_FAILED';
  if (status === 404 || status === 410) return 'NOT_FOUND';
  if (status === 429) return 'SOURCE_RATE_LIMITED';
  if (status === 503 || status === 504 || status >= 500 || status <= 0) return 'SOURCE_UNAVAILABLE';
  return 'SOURCE_BAD_DATA';
}

/** The AstryError for a failed call, or `err` itself when it is not an expected failure. */
export function toAstryError(err: unknown, what: string): unknown {
  if (err instanceof AstryError) return err;
  if (err instanceof GraphError) {
    const status = err.statusCode;
    return new AstryError(codeOf(status), `Graph ${what} failed: HTTP ${status}${err.code ? ` ${err.code}` : ''}`, { cause: err });
  }
  if (err instanceof TypeError) return new AstryError('SOURCE_UNAVAILABLE', `Graph ${what}: request failed`, { cause: err });
  return err;
}

/** Validates an answer; an unexpected shape is SOURCE_BAD_DATA naming the first offending paths. */
export function parseAnswer<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new AstryError('SOURCE_BAD_DATA', `Graph ${what} returned an unexpected response: ${problems}`, { cause: result.error });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A Graph SDK client plus SharePoint REST, sharing one token provider and one TLS agent. */
export class GraphApi {
  readonly client: Client;
  readonly #tokens: TokenProvider;
  readonly #fetch: BoundFetch;
  readonly #retry: GraphRetry;

  constructor(options: { graphUrl: string; tokens: TokenProvider; fetch: BoundFetch; retry: GraphRetry }) {
    this.#tokens = options.tokens;
    this.#fetch = options.fetch;
    this.#retry = options.retry;
    const auth = new AuthenticationHandler(options.tokens.provider(GRAPH_SCOPE));
    const retry = new RetryHandler(new RetryHandlerOptions(options.retry.delaySeconds, options.retry.maxRetries));
    const send = new BoundFetchHandler(options.fetch);
    auth.setNext(retry);
    retry.setNext(send);
    const host = new URL(options.graphUrl).hostname;
    this.client = Client.initWithMiddleware({ middleware: auth, baseUrl: options.graphUrl, customHosts: new Set([host]) });
  }

  /** One GET of a path (or a full nextLink/deltaLink URL), validated with `schema`. */
  async get<S extends z.ZodType>(path: string, schema: S, headers: Record<string, string> = {}): Promise<z.output<S>> {
    let raw: unknown;
    try {
      raw = await this.client.api(path).headers(headers).get();
    } catch (err) {
      throw toAstryError(err, `GET ${path.split('?')[0]}`);
    }
    return parseAnswer(schema, raw, `GET ${path.split('?')[0]}`);
  }

  /** Like get, but 410 Gone (an expired delta token) is the value `gone` rather than an error. */
  async getOrGone<S extends z.ZodType>(path: string, schema: S, headers: Record<string, string> = {}): Promise<z.output<S> | 'gone'> {
    let raw: unknown;
    try {
      raw = await this.client.api(path).headers(headers).get();
    } catch (err) {
      if (err instanceof GraphError && err.statusCode === 410) return 'gone';
      throw toAstryError(err, `GET ${path.split('?')[0]}`);
    }
    return parseAnswer(schema, raw, `GET ${path.split('?')[0]}`);
  }

  /** POST a JSON body, validated. */
  async post<S extends z.ZodType>(path: string, body: unknown, schema: S): Promise<z.output<S>> {
    let raw: unknown;
    try {
      raw = await this.client.api(path).post(body);
    } catch (err) {
      throw toAstryError(err, `POST ${path}`);
    }
    return parseAnswer(schema, raw, `POST ${path}`);
  }

  /** Every row of a paged collection, page by page; a repeated nextLink is SOURCE_BAD_DATA. */
  async *pages<S extends z.ZodType<{ value: unknown[]; '@odata.nextLink'?: string | undefined }>>(path: string, schema: S): AsyncGenerator<z.output<S>> {
    const seen = new Set<string>();
    for (let next: string | undefined = path; next !== undefined; ) {
      const page: z.output<S> = await this.get(next, schema);
      yield page;
      next = page['@odata.nextLink'];
      if (next !== undefined && seen.has(next)) throw new AstryError('SOURCE_BAD_DATA', `Graph returned nextLink ${next} twice`);
      if (next !== undefined) seen.add(next);
    }
  }

  /** The raw response of a GET (any status), for `/content` and its 302. */
  async raw(path: string): Promise<Response> {
    try {
      const response: unknown = await this.client.api(path).responseType(ResponseType.RAW).get();
      if (!(response instanceof Response)) throw new AstryError('SOURCE_BAD_DATA', `Graph GET ${path} returned no response`);
      return response;
    } catch (err) {
      throw toAstryError(err, `GET ${path}`);
    }
  }

  /** GET of a URL with no credentials (a pre-authenticated download URL). */
  anonymous(url: string, signal: AbortSignal): Promise<Response> {
    return this.#fetch(url, { signal });
  }

  /**
   * A SharePoint REST GET (`<site>/_api/...`) with a token for the SharePoint host, retrying 429 and
   * 503 after their Retry-After like the Graph client does.
   * https://learn.microsoft.com/en-us/sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online
   */
  async sharepoint<S extends z.ZodType>(url: string, schema: S): Promise<z.output<S>> {
    const origin = new URL(url).origin;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        const token = await this.#tokens.token(`${origin}/.default`);
        response = await this.#fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/json;odata=nometadata' } });
      } catch (cause) {
        if (cause instanceof AstryError) throw cause;
        throw new AstryError('SOURCE_UNAVAILABLE', `SharePoint GET ${url} failed`, { cause });
      }
      if (response.ok) return parseAnswer(schema, await response.json().catch(() => null), `SharePoint GET ${new URL(url).pathname}`);
      await response.body?.cancel();
      const retryable = response.status === 429 || response.status === 503;
      if (!retryable || attempt >= this.#retry.maxRetries) {
        throw new AstryError(codeOf(response.status), `SharePoint GET ${new URL(url).pathname} answered HTTP ${response.status}`);
      }
      const after = Number(response.headers.get('retry-after'));
      await sleep(1000 * (Number.isFinite(after) && after >= 0 ? Math.min(after, 180) : this.#retry.delaySeconds * 2 ** attempt));
    }
  }
}
