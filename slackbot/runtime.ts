/** The Slack bot worker as configured by the environment: `astry slackbot` or `startSlackBotFromEnv`. */
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type pg from 'pg';
import type { AuditLog } from '../audit/log.ts';
import { SlackConnector } from '../connectors/slack/connector.ts';
import type { Env } from '../core/env.ts';
import { SlackConfigSchema, connectionToken, ensureWorkspace, getConnection } from '../db/connections.ts';
import { AstryError } from '../core/errors.ts';
import { createPool } from '../db/pool.ts';
import { LocalKeyFileProvider } from '../vault/key-provider.ts';
import { AskQueue, redisConnection } from '../worker/queue.ts';
import { auditFromEnv } from '../worker/runtime.ts';
import type { SlackEnv } from './config.ts';
import { Conversations } from './conversation.ts';
import type { SlackBotDeps } from './handler.ts';
import { Offers } from './offers.ts';
import { SlackPoster } from './poster.ts';
import { RateLimiter } from './rate-limit.ts';
import { startSlackBotWorker } from './worker.ts';

/**
 * Slack Web API retries for the bot: a few, quickly. Why not the SDK default (~30 minutes): an answer
 * posted half an hour late, in a thread that moved on, is worse than a logged failure.
 */
export const BOT_SLACK_RETRY = { retries: 3, factor: 2, minTimeout: 500, maxTimeout: 5000, randomize: true };

export interface RunningSlackBot {
  worker: Worker;
  deps: SlackBotDeps;
  close(): Promise<void>;
}

/** Builds the bot's dependencies from the environment and starts its worker. */
export async function startSlackBotFromEnv(config: Env, slackEnv: SlackEnv): Promise<RunningSlackBot> {
  const pool: pg.Pool = createPool(config.DATABASE_URL);
  const redis = new Redis(config.REDIS_URL);
  const connectionOptions = redisConnection(config.REDIS_URL);
  const queue = new AskQueue(connectionOptions);
  let audit: AuditLog | undefined;
  try {
    const keys = await LocalKeyFileProvider.open(config.ASTRY_KEK_FILE);
    const workspaceId = await ensureWorkspace(pool, config.ASTRY_WORKSPACE);
    const connection = await getConnection(pool, slackEnv.ASTRY_SLACK_CONNECTION, workspaceId);
    if (connection.source !== 'slack') throw new AstryError('CONFIG_INVALID', `connection ${connection.name} is not a Slack connection`);
    const { apiUrl } = SlackConfigSchema.parse(connection.config);
    const token = await connectionToken(pool, keys, connection.id);
    const slack = new SlackConnector({ token, apiUrl, maxFileBytes: config.ASTRY_MAX_FILE_BYTES, retryConfig: BOT_SLACK_RETRY });
    const team = await slack.team();
    audit = await auditFromEnv(config, pool);
    const deps: SlackBotDeps = {
      pool, keys, workspaceId, connectionId: connection.id, teamId: team.teamId, botUserId: team.botUserId,
      slack,
      poster: new SlackPoster({ token, apiUrl, retryConfig: BOT_SLACK_RETRY }),
      asker: queue,
      conversations: new Conversations({
        pool, keys, workspaceId, connectionId: connection.id,
        maxTurns: slackEnv.ASTRY_SLACK_CONTEXT_TURNS, retentionDays: slackEnv.ASTRY_SLACK_HISTORY_DAYS,
      }),
      offers: new Offers(redis, { ttlSeconds: slackEnv.ASTRY_SLACK_OFFER_TTL_SECONDS }),
      rateLimiter: new RateLimiter(redis, { limit: slackEnv.ASTRY_SLACK_RATE_LIMIT, windowSeconds: slackEnv.ASTRY_SLACK_RATE_WINDOW_SECONDS }),
      audit,
      askTimeoutMs: slackEnv.ASTRY_SLACK_ASK_TIMEOUT_MS,
    };
    const worker = await startSlackBotWorker(deps, { connection: connectionOptions, concurrency: slackEnv.ASTRY_SLACK_CONCURRENCY });
    const openAudit = audit;
    return {
      worker, deps,
      async close() {
        await worker.close();
        await queue.close();
        await openAudit.close();
        redis.disconnect();
        await pool.end();
      },
    };
  } catch (err) {
    await queue.close().catch(() => undefined);
    await audit?.close().catch(() => undefined);
    redis.disconnect();
    await pool.end().catch(() => undefined);
    throw err;
  }
}
