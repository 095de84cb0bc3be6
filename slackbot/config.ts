/**
 * The Slack app's settings, parsed once from the environment. Kept here until the lead moves them into
 * core/env.ts (same names, same defaults).
 */
import { z } from 'zod';
import { parseConfig } from '../core/config.ts';

const SlackEnvSchema = z.object({
  /** The Slack app's signing secret ("Basic Information" in the app settings). Required to serve Slack. */
  ASTRY_SLACK_SIGNING_SECRET: z.string().min(1),
  /** Name (or id) of the Slack connection whose bot token answers and whose identities resolve askers. */
  ASTRY_SLACK_CONNECTION: z.string().min(1).default('slack'),
  /** Questions per user per window (default 10 per 60 s), counted in Redis across processes. */
  ASTRY_SLACK_RATE_LIMIT: z.coerce.number().int().min(1).default(10),
  ASTRY_SLACK_RATE_WINDOW_SECONDS: z.coerce.number().int().min(1).default(60),
  /** How long the bot waits for the query worker, in ms (default 120000). */
  ASTRY_SLACK_ASK_TIMEOUT_MS: z.coerce.number().int().min(1000).default(120_000),
  /** Slack jobs handled at once per bot worker (default 8). */
  ASTRY_SLACK_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  /** Previous turns of a thread given as context to a follow-up (default 3), and their retention in days (default 30). */
  ASTRY_SLACK_CONTEXT_TURNS: z.coerce.number().int().min(0).max(20).default(3),
  ASTRY_SLACK_HISTORY_DAYS: z.coerce.number().int().min(1).default(30),
  /** How long "send me the full answer privately" can be clicked, in seconds (default 3600). */
  ASTRY_SLACK_OFFER_TTL_SECONDS: z.coerce.number().int().min(60).default(3600),
  /** How long event ids are remembered for de-duplication, in seconds (default 3600; at least 300). */
  ASTRY_SLACK_DEDUPE_TTL_SECONDS: z.coerce.number().int().min(300).default(3600),
});

export type SlackEnv = z.infer<typeof SlackEnvSchema>;

/** Parses the Slack settings; throws CONFIG_INVALID naming each bad variable. */
export function parseSlackEnv(source: Record<string, string | undefined>): SlackEnv {
  return parseConfig(SlackEnvSchema, source, 'Slack app environment');
}
