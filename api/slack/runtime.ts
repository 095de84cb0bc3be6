/** The Slack endpoints as configured by the environment, ready for buildApi's `routes`. */
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import type { Env } from '../../core/env.ts';
import type { SlackEnv } from '../../slackbot/config.ts';
import { SlackJobs } from '../../slackbot/jobs.ts';
import { redisConnection } from '../../worker/queue.ts';
import { registerSlackRoutes } from './routes.ts';

export interface SlackRoutes {
  /** Pass in `buildApi({ routes: [slack.register] })`. */
  register: (app: FastifyInstance) => Promise<void>;
  /** Closes the Redis connections (after the API has closed). */
  close(): Promise<void>;
}

export function slackRoutesFromEnv(config: Env, slackEnv: SlackEnv): SlackRoutes {
  const redis = new Redis(config.REDIS_URL);
  const jobs = new SlackJobs(redisConnection(config.REDIS_URL));
  return {
    register: (app) => registerSlackRoutes(app, { signingSecret: slackEnv.ASTRY_SLACK_SIGNING_SECRET, redis, jobs, dedupeTtlSeconds: slackEnv.ASTRY_SLACK_DEDUPE_TTL_SECONDS }),
    async close() {
      await jobs.close();
      redis.disconnect();
    },
  };
}
