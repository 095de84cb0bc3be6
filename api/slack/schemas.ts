/**
 * What Slack sends the app, validated. Envelopes: https://docs.slack.dev/apis/events-api/#callback-field
 * Events: https://docs.slack.dev/reference/events/app_mention, https://docs.slack.dev/reference/events/message.im
 * Interactions: https://docs.slack.dev/reference/interaction-payloads/block_actions-payload
 */
import { z } from 'zod';

const Ts = z.string().regex(/^\d+\.\d+$/);
/** Slack ids (team, user, channel, event): letters and digits only, so they are safe in keys and job ids. */
const Id = z.string().regex(/^[A-Za-z0-9]{1,64}$/);

export const UrlVerificationSchema = z.object({ type: z.literal('url_verification'), challenge: z.string().min(1).max(512) });

export const EventCallbackSchema = z.object({
  type: z.literal('event_callback'),
  team_id: Id,
  event_id: Id,
  event: z.object({ type: z.string() }).loose(),
});

/** Any other envelope type (app_rate_limited, ...) is acknowledged and ignored. */
export const EnvelopeSchema = z.object({ type: z.string() }).loose();

/** `@astry …` in a channel, group DM or thread. */
export const AppMentionSchema = z.object({
  type: z.literal('app_mention'),
  user: Id,
  text: z.string(),
  ts: Ts,
  channel: Id,
  thread_ts: Ts.optional(),
  subtype: z.string().optional(),
  bot_id: z.string().optional(),
});

/** A message in the bot's DM (`message.im`). Edits, deletions and bot posts carry a subtype or bot_id. */
export const ImMessageSchema = z.object({
  type: z.literal('message'),
  channel_type: z.literal('im'),
  channel: Id,
  user: Id.optional(),
  text: z.string().default(''),
  ts: Ts,
  thread_ts: Ts.optional(),
  subtype: z.string().optional(),
  bot_id: z.string().optional(),
});

export const BlockActionsSchema = z.object({
  type: z.literal('block_actions'),
  user: z.object({ id: Id }),
  team: z.object({ id: Id }).nullable().optional(),
  channel: z.object({ id: Id }).optional(),
  container: z.object({ channel_id: Id.optional(), thread_ts: Ts.optional(), message_ts: Ts.optional() }).loose().optional(),
  actions: z.array(z.object({ action_id: z.string(), value: z.string().optional() }).loose()),
});
