/**
 * The WebClient, built once per connector, with two helpers: one validated call, and full cursor
 * pagination. Every failure leaves here as an AstryError (see errors.ts).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { LogLevel, WebClient, type FetchFunction, type RetryOptions } from '@slack/web-api';
import type { z } from 'zod';
import { AstryError } from '../../core/errors.ts';
import { parseResponse, toAstryError, type CallObservation } from './errors.ts';

/** Slack's recommended page size for cursor-paginated methods. https://docs.slack.dev/apis/web-api/pagination */
export const PAGE_SIZE = 200;

/** Options of the Slack Web API client. */
export interface SlackApiOptions {
  /** Bot token (`xoxb-…`). */
  token: string;
  /** Web API base URL, e.g. `https://slack.com/api/`; an emulator's in tests. */
  apiUrl: string;
  /** WebClient retry policy; default @slack/web-api's tenRetriesInAboutThirtyMinutes. */
  retryConfig?: RetryOptions;
}

/** A page of a cursor-paginated method. */
interface Page {
  response_metadata?: { next_cursor?: string | undefined } | undefined;
}

const observation = new AsyncLocalStorage<CallObservation>();

/**
 * fetch that records, for the call running in the current async context, the last HTTP status and
 * 200 body. Why: the WebClient's errors after exhausted 429 retries and for a non-JSON body carry
 * no code saying so (errors.ts). Calls queued behind another call's rate-limit pause may record
 * into that call's context; both are then rate limited, so the code chosen is the same in practice.
 */
const observingFetch: FetchFunction = async (url, init) => {
  const response = await fetch(url, init);
  const seen = observation.getStore();
  if (seen === undefined) return response;
  seen.status = response.status;
  seen.body = undefined;
  if (response.status !== 200) return response;
  const body = await response.text();
  seen.body = body;
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
};

/** A WebClient whose answers are validated and whose failures are AstryErrors. */
export class SlackApi {
  readonly #client: WebClient;

  constructor(options: SlackApiOptions) {
    this.#client = new WebClient(options.token, {
      slackApiUrl: options.apiUrl,
      // Why: the WebClient then waits Retry-After and retries (pausing its other calls), which is
      // what Slack asks of clients; retryConfig bounds how long before SOURCE_RATE_LIMITED.
      rejectRateLimitedCalls: false,
      ...(options.retryConfig === undefined ? {} : { retryConfig: options.retryConfig }),
      fetch: observingFetch,
      logLevel: LogLevel.WARN,
    });
  }

  /** One Web API call, validated with `schema`. */
  async call<S extends z.ZodType>(method: string, args: Record<string, unknown>, schema: S): Promise<z.output<S>> {
    const seen: CallObservation = { status: undefined, body: undefined };
    let raw: unknown;
    try {
      raw = await observation.run(seen, () => this.#client.apiCall(method, args));
    } catch (err) {
      throw toAstryError(err, method, seen);
    }
    return parseResponse(schema, raw, method);
  }

  /**
   * Every page of a cursor-paginated method, in order. Why our own loop rather than
   * WebClient.paginate: each page is validated before it is yielded, and a repeated cursor (a
   * source bug that would loop forever) becomes SOURCE_BAD_DATA.
   */
  async *pages<S extends z.ZodType<Page>>(
    method: string,
    args: Record<string, unknown>,
    schema: S,
  ): AsyncGenerator<z.output<S>, void, undefined> {
    const seenCursors = new Set<string>();
    let cursor: string | undefined;
    for (;;) {
      const page: z.output<S> = await this.call(method, { ...args, limit: PAGE_SIZE, cursor }, schema);
      yield page;
      const next = page.response_metadata?.next_cursor ?? '';
      if (next === '') return;
      if (seenCursors.has(next)) {
        throw new AstryError('SOURCE_BAD_DATA', `Slack ${method} returned cursor ${next} twice`);
      }
      seenCursors.add(next);
      cursor = next;
    }
  }
}
