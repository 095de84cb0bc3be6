import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type pg from 'pg';
import { AstryError, isAstryError, type AstryErrorCode } from '../core/errors.ts';
import type { TokenVerifier } from '../identity/verifier.ts';
import { IdentityError } from '../identity/errors.ts';
import { resolveUser } from '../identity/users.ts';
import { randomUUID } from 'node:crypto';
import type { AskQueue } from '../worker/queue.ts';
import type { AuditLog } from '../audit/log.ts';
import { refusalAuditFields, type RefusedAsker } from '../erasure/personal.ts';
import { sourceIdentifier } from '../erasure/pseudonym.ts';
import type { KeyProvider } from '../vault/key-provider.ts';

/** What the HTTP API needs. */
export type ApiDeps = ApiBaseDeps & (
  | { audit?: undefined; keys?: KeyProvider }
  | {
    /** Refused requests are audited here (answered ones are audited by the query worker). */
    audit: AuditLog;
    /** Seals refused users' identifiers under their subject key, or pseudonymizes them. */
    keys: KeyProvider;
  }
);

interface ApiBaseDeps {
  pool: pg.Pool;
  verifier: TokenVerifier;
  queue: AskQueue;
  workspaceId: string;
  /** How long POST /v1/ask waits for the worker, in ms (default 120000). */
  askTimeoutMs?: number;
  /** More route groups (SCIM, the Slack app endpoint), each registering its own routes and schemas. */
  routes?: ((app: FastifyInstance) => Promise<void>)[];
}

const STATUS: Partial<Record<AstryErrorCode, number>> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  BUDGET_EXHAUSTED: 429,
  TIMEOUT: 504,
  CONFINEMENT_UNAVAILABLE: 503,
};

const ErrorBody = {
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string', description: 'stable error code' }, message: { type: 'string' } },
} as const;

const AskBody = {
  type: 'object',
  required: ['question'],
  additionalProperties: false,
  properties: { question: { type: 'string', minLength: 1, maxLength: 4000 } },
} as const;

const AskResponse = {
  type: 'object',
  required: ['requestId', 'answer', 'mode', 'partial', 'stop', 'citations', 'usage', 'model'],
  properties: {
    requestId: { type: 'string' },
    answer: { type: 'string' },
    mode: { type: 'string', enum: ['extractive', 'model'], description: 'extractive answers are assembled without a language model' },
    partial: { type: 'boolean', description: 'true when a budget stopped the model early' },
    stop: { type: 'string' },
    model: { type: 'string' },
    citations: {
      type: 'array',
      items: { type: 'object', required: ['documentId', 'title', 'url'], properties: { documentId: { type: 'string' }, title: { type: 'string' }, url: { type: 'string' } } },
    },
    usage: {
      type: 'object',
      required: ['inputTokens', 'outputTokens', 'usd', 'toolCalls'],
      properties: { inputTokens: { type: 'integer' }, outputTokens: { type: 'integer' }, usd: { type: 'number' }, toolCalls: { type: 'integer' } },
    },
  },
} as const;

function sendError(reply: FastifyReply, err: AstryError): FastifyReply {
  return reply.code(STATUS[err.code] ?? 400).send({ error: err.code, message: err.message });
}

/** The HTTP API: POST /v1/ask (Bearer token from the IdP), described at GET /openapi.json. */
export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const { audit, keys } = deps;
  // Without keys a refusal could only be audited naming the person in clear.
  if (audit && !keys) throw new TypeError('buildApi: `keys` is required with `audit` (refusals are audited under sealed or pseudonymous actors)');
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Astry API', version: '0.1.0', description: 'Ask questions answered only from what the asker may read.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });

  app.get('/healthz', { schema: { hide: true } }, () => ({ ok: true }));

  app.post<{ Body: { question: string } }>(
    '/v1/ask',
    {
      schema: {
        description: 'Answer a question from the documents the caller may read, with citations.',
        security: [{ bearer: [] }],
        body: AskBody,
        response: { 200: AskResponse, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 429: ErrorBody, 503: ErrorBody, 504: ErrorBody },
      },
    },
    async (request, reply) => {
      // Who is asking, as far as known when a refusal comes: nobody (no valid token), an IdP subject, a user.
      let subject: string | undefined;
      let principalId: number | undefined;
      try {
        const header = request.headers.authorization ?? '';
        const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header);
        if (!match?.[1]) throw new AstryError('UNAUTHENTICATED', 'a Bearer token is required');
        const token = await deps.verifier.verify(match[1]);
        subject = token.subject;
        const user = await resolveUser(deps.pool, deps.workspaceId, token);
        principalId = user.principalId;
        const { question } = request.body;
        const result = await deps.queue.ask(
          { requestId: randomUUID(), workspaceId: deps.workspaceId, principalId: user.principalId, question },
          deps.askTimeoutMs ?? 120_000,
        );
        return {
          requestId: result.requestId,
          answer: result.answer.text,
          mode: result.answer.mode,
          partial: result.answer.partial,
          stop: result.answer.stop,
          model: `${result.answer.provider}/${result.answer.model}`,
          citations: result.citations,
          usage: result.answer.usage,
        };
      } catch (err) {
        if (audit && keys && isAstryError(err, 'UNAUTHENTICATED', 'FORBIDDEN')) {
          // Every query leaves an audit entry, refused ones too (the log spools if Postgres is down),
          // naming no one in clear: a known user's identifiers are sealed under their key, an unknown
          // IdP subject is a keyed pseudonym of `oidc:<sub>` (docs/query.md).
          if (err instanceof IdentityError && err.principalId !== undefined) principalId = err.principalId;
          const asker: RefusedAsker | undefined =
            principalId !== undefined ? { principalId } : subject !== undefined ? { identifier: sourceIdentifier('oidc', subject) } : undefined;
          const who = asker === undefined
            ? { actor: 'unauthenticated' }
            : await refusalAuditFields(deps.pool, keys, deps.workspaceId, asker, {
              ...(principalId === undefined ? {} : { actor: `principal:${principalId}` }),
              subject, reason: err instanceof IdentityError ? err.reason : err.message,
            });
          await audit.append({ workspaceId: deps.workspaceId, type: 'query', ...who, outcome: `refused_${err.code.toLowerCase()}`, documentIds: [], details: { via: 'api' } });
        }
        if (isAstryError(err)) return sendError(reply, err);
        throw err;
      }
    },
  );

  for (const register of deps.routes ?? []) await register(app);
  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
  return app;
}
