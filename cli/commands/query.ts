import { once } from 'node:events';
import { z } from 'zod';
import { verifyAudit } from '../../audit/verify.ts';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../api/server.ts';
import { registerAdminRoutes } from '../../api/admin/routes.ts';
import { registerScimRoutes } from '../../api/scim/routes.ts';
import { registerDriveWebhookRoutes } from '../../workflows/drive/webhook.ts';
import { registerGraphWebhookRoutes } from '../../workflows/graph/webhook.ts';
import { slackRoutesFromEnv } from '../../api/slack/runtime.ts';
import { parseSlackEnv } from '../../slackbot/config.ts';
import { TokenVerifier } from '../../identity/verifier.ts';
import { AskQueue, redisConnection } from '../../worker/queue.ts';
import { startQueryWorker } from '../../worker/query-worker.ts';
import { askDepsFromEnv, auditFromEnv, auditVerifyOptionsFromEnv } from '../../worker/runtime.ts';
import type { CliContext } from '../context.ts';

/** `astry query-worker`: answers queued questions until SIGINT/SIGTERM, then drains gracefully. */
export async function runQueryWorker(ctx: CliContext): Promise<void> {
  const deps = await askDepsFromEnv(ctx.env);
  const worker = await startQueryWorker(deps, { connection: redisConnection(ctx.env.REDIS_URL), concurrency: ctx.env.ASTRY_QUERY_CONCURRENCY, confinement: ctx.env.ASTRY_CONFINEMENT });
  console.log(`query worker ready (provider ${deps.provider.name}/${deps.provider.model}, region ${deps.provider.region})`);
  await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  await worker.close();
  await deps.audit.close();
  await deps.pool.end();
}

/** `astry api`: the HTTP API (POST /v1/ask, /scim/v2, /v1/admin, webhooks, GET /openapi.json). */
export async function runApi(ctx: CliContext): Promise<void> {
  const verifier = new TokenVerifier({
    issuer: ctx.env.ASTRY_OIDC_ISSUER,
    audience: ctx.env.ASTRY_OIDC_AUDIENCE,
    jwksUrl: ctx.env.ASTRY_OIDC_JWKS_URL ?? `${ctx.env.ASTRY_OIDC_ISSUER}/jwks`,
  });
  const queue = new AskQueue(redisConnection(ctx.env.REDIS_URL));
  const audit = await auditFromEnv(ctx.env, ctx.pool);
  // The Slack app endpoint is served when a signing secret is configured (ASTRY_SLACK_SIGNING_SECRET).
  const slack = process.env.ASTRY_SLACK_SIGNING_SECRET ? slackRoutesFromEnv(ctx.env, parseSlackEnv(process.env)) : undefined;
  // Connected on first use: the API serves questions while Temporal is down, and the routes that need
  // it (webhooks, admin sync/pause/resume/erasure) fail until it is back (admin ones with 503).
  const temporal = ctx.lazyTemporal();
  // Change notifications from Graph and Drive trigger an immediate run of the connection's schedule.
  const webhooks = [
    (app: FastifyInstance) => registerGraphWebhookRoutes(app, { pool: ctx.pool, temporal }),
    (app: FastifyInstance) => registerDriveWebhookRoutes(app, { pool: ctx.pool, temporal }),
  ];
  const scim = (app: FastifyInstance) => registerScimRoutes(app, { pool: ctx.pool });
  const workspaceId = await ctx.workspaceId();
  const keys = await ctx.keys();
  const admin = async (app: FastifyInstance) => registerAdminRoutes(app, {
    pool: ctx.pool, verifier, workspaceId, audit, keys, rolesClaim: ctx.env.ASTRY_ADMIN_ROLES_CLAIM,
    temporal: { client: temporal, taskQueue: ctx.env.ASTRY_TASK_QUEUE }, auditVerify: await auditVerifyOptionsFromEnv(ctx.env),
  });
  const app = await buildApi({ pool: ctx.pool, verifier, queue, workspaceId, audit, keys, routes: [scim, admin, ...webhooks, ...(slack ? [slack.register] : [])] });
  const address = await app.listen({ host: ctx.env.ASTRY_API_HOST, port: ctx.env.ASTRY_API_PORT });
  console.log(`API listening on ${address} (OpenAPI at ${address}/openapi.json)`);
  await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  await app.close();
  await slack?.close();
  await queue.close();
  await audit.close();
}

/** `astry audit verify`: recomputes the chain and checks signed checkpoints; exit 1 on the first broken entry. */
export async function auditVerify(ctx: CliContext): Promise<void> {
  const result = await verifyAudit(ctx.pool, await auditVerifyOptionsFromEnv(ctx.env));
  if (result.ok) {
    console.log(`audit trail intact: ${result.entries} entries, ${result.checkpoints} signed checkpoint${result.checkpoints === 1 ? '' : 's'}`);
  } else {
    console.log(`audit trail BROKEN at entry ${result.firstBrokenSeq}: ${result.reason}`);
    process.exitCode = 1;
  }
}

/** One answer as POST /v1/ask returns it (validated: the CLI may talk to any server). */
const AnswerSchema = z.object({
  answer: z.string(),
  mode: z.string(),
  partial: z.boolean(),
  stop: z.string(),
  model: z.string(),
  citations: z.array(z.object({ title: z.string(), url: z.string() })),
  usage: z.object({ usd: z.number(), toolCalls: z.number(), inputTokens: z.number(), outputTokens: z.number() }),
});
export type PrintableAnswer = z.infer<typeof AnswerSchema>;

/** `astry ask`: POST /v1/ask with a bearer token and print the answer with its citations. */
export async function askApi(apiUrl: string, token: string, question: string): Promise<PrintableAnswer> {
  const response = await fetch(`${apiUrl}/v1/ask`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ question }),
  });
  const body: unknown = await response.json();
  if (!response.ok) {
    const message = typeof body === 'object' && body && 'message' in body ? String(body.message) : response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return AnswerSchema.parse(body);
}

export function printAnswer(a: PrintableAnswer): void {
  console.log(a.answer);
  if (a.citations.length > 0) {
    console.log('Sources:');
    for (const c of a.citations) console.log(`  - ${c.title}  ${c.url}`);
  }
  console.log(`[${a.model}; $${a.usage.usd.toFixed(4)}; ${a.usage.toolCalls} tool calls${a.partial ? `; PARTIAL: ${a.stop}` : ''}]`);
}
