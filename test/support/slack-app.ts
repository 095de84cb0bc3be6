import { randomBytes } from 'node:crypto';
import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { buildApi } from '../../api/server.ts';
import { registerSlackRoutes } from '../../api/slack/routes.ts';
import { SlackConnector } from '../../connectors/slack/connector.ts';
import { env } from '../../core/env.ts';
import { DEFAULT_API_AUDIENCE } from '../../fixtures/idp/people.ts';
import type { SlackApp } from '../../fixtures/slack/app.ts';
import { TEAM_ID, USER } from '../../fixtures/slack/ids.ts';
import { TokenVerifier } from '../../identity/verifier.ts';
import { Conversations } from '../../slackbot/conversation.ts';
import type { Outcome, SlackBotDeps } from '../../slackbot/handler.ts';
import { SlackJobs } from '../../slackbot/jobs.ts';
import { Offers } from '../../slackbot/offers.ts';
import { SlackPoster } from '../../slackbot/poster.ts';
import { RateLimiter } from '../../slackbot/rate-limit.ts';
import { startSlackBotWorker } from '../../slackbot/worker.ts';
import { AskQueue, redisConnection } from '../../worker/queue.ts';
import { TEST_SLACK_RETRY, type SyncHarness } from './harness.ts';
import type { QueryStack } from './query-stack.ts';

/** One finished Slack job: what happened and how long after the endpoint accepted it. */
export interface Finished {
  outcome: Outcome;
  ms: number;
}

/** The Slack side on top of a synced harness and its query stack: API with the Slack routes, the bot worker, the emulator's app. */
export interface SlackAppStack {
  api: FastifyInstance;
  apiUrl: string;
  app: SlackApp;
  deps: SlackBotDeps;
  redis: Redis;
  keyPrefix: string;
  signingSecret: string;
  finished: Finished[];
  /** Resolves once `n` more jobs than now have finished. */
  jobsFinished(n: number, timeoutMs?: number): Promise<Finished[]>;
  close(): Promise<void>;
}

export async function startSlackAppStack(
  h: SyncHarness,
  q: QueryStack,
  opts: { rateLimit?: number; retryDelaysMs?: number[]; concurrency?: number } = {},
): Promise<SlackAppStack> {
  const suffix = randomBytes(4).toString('hex');
  const keyPrefix = `astry-test:${suffix}`;
  const signingSecret = randomBytes(16).toString('hex');
  const connection = redisConnection(env().REDIS_URL);
  const redis = new Redis(env().REDIS_URL);
  const slackQueue = `astry-slack-test-${suffix}`;
  const jobs = new SlackJobs(connection, slackQueue);
  const askQueue = new AskQueue(connection, q.queueName);
  const api = await buildApi({
    pool: h.db.pool,
    verifier: new TokenVerifier({ issuer: q.idp.issuer, audience: DEFAULT_API_AUDIENCE, jwksUrl: q.idp.jwksUrl }),
    queue: askQueue,
    workspaceId: h.workspaceId,
    routes: [(app) => registerSlackRoutes(app, { signingSecret, redis, jobs, keyPrefix, onWarning: () => undefined })],
  });
  const apiUrl = await api.listen({ host: '127.0.0.1', port: 0 });
  const app = h.emulator.installApp({
    eventsUrl: `${apiUrl}/slack/events`,
    interactionsUrl: `${apiUrl}/slack/interactions`,
    signingSecret,
    retryDelaysMs: opts.retryDelaysMs ?? [50, 100, 200],
  });
  const slack = new SlackConnector({ token: h.emulator.token, apiUrl: h.emulator.url, maxFileBytes: 1024 * 1024, retryConfig: TEST_SLACK_RETRY });
  const deps: SlackBotDeps = {
    pool: h.db.pool,
    keys: h.deps.keys,
    workspaceId: h.workspaceId,
    connectionId: h.connectionId,
    teamId: TEAM_ID,
    botUserId: USER.astry,
    slack,
    poster: new SlackPoster({ token: h.emulator.token, apiUrl: h.emulator.url, retryConfig: TEST_SLACK_RETRY }),
    asker: askQueue,
    conversations: new Conversations({ pool: h.db.pool, keys: h.deps.keys, workspaceId: h.workspaceId, connectionId: h.connectionId }),
    offers: new Offers(redis, { keyPrefix }),
    rateLimiter: new RateLimiter(redis, { keyPrefix, limit: opts.rateLimit ?? 1000, windowSeconds: 60 }),
    audit: q.deps.audit,
    askTimeoutMs: 60_000,
  };
  const finished: Finished[] = [];
  const waiters = new Set<() => void>();
  const worker: Worker = await startSlackBotWorker(deps, {
    connection,
    queueName: slackQueue,
    concurrency: opts.concurrency ?? 4,
    onOutcome: (outcome, ms) => {
      finished.push({ outcome, ms });
      for (const wake of waiters) wake();
    },
  });
  return {
    api, apiUrl, app, deps, redis, keyPrefix, signingSecret, finished,
    jobsFinished(n, timeoutMs = 60_000) {
      const target = finished.length + n;
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (finished.length < target) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(finished.slice(target - n, target));
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`only ${finished.length - (target - n)} of ${n} Slack jobs finished in ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    async close() {
      await app.close();
      await api.close();
      await worker.close();
      await jobs.close();
      await askQueue.close();
      const keys = await redis.keys(`${keyPrefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    },
  };
}
