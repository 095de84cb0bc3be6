/**
 * The Slack app's HTTP endpoints: the Events API Request URL (POST /slack/events) and the
 * Interactivity Request URL (POST /slack/interactions). Each request is verified (signature, 5-minute
 * timestamp window), de-duplicated across API processes (Redis SET NX), queued, and acknowledged
 * well within Slack's 3 seconds; the answer is posted later by the Slack bot worker (slackbot/).
 * https://docs.slack.dev/apis/events-api/ · https://docs.slack.dev/interactivity/handling-user-interaction
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { claimOnce, markDone, releaseClaim } from '../../slackbot/dedupe.ts';
import { PRIVATE_ANSWER_ACTION, type QuestionJob, type SlackJob, type SlackJobs } from '../../slackbot/jobs.ts';
import { OFFER_ID } from '../../slackbot/offers.ts';
import {
  AppMentionSchema, BlockActionsSchema, EnvelopeSchema, EventCallbackSchema, ImMessageSchema, UrlVerificationSchema,
} from './schemas.ts';
import { MAX_TOLERANCE_SECONDS, verifySlackSignature } from './verify.ts';

/** What the Slack endpoints need. */
export interface SlackRouteDeps {
  /** The app's signing secret (Slack app settings, "Basic Information"). */
  signingSecret: string;
  /** Shared by every API process: event ids seen, for de-duplication. */
  redis: Redis;
  /** Where accepted work is queued for the Slack bot worker. */
  jobs: Pick<SlackJobs, 'add'>;
  /** Accepted distance between Slack's timestamp and our clock, in seconds (default and maximum 300). */
  toleranceSeconds?: number;
  /** How long an event id is remembered, in seconds (default 3600; must outlive Slack's retries, ~5 min). */
  dedupeTtlSeconds?: number;
  /** Redis key prefix (default `astry:slack`). */
  keyPrefix?: string;
  /** Milliseconds since the epoch (default Date.now); tests move the clock. */
  now?: () => number;
  /** Rejected and failed requests are reported here (default console.warn). */
  onWarning?: (message: string, err?: unknown) => void;
}

/** Largest request accepted, in bytes: event payloads are small; a 40k-character message fits. */
const BODY_LIMIT = 512 * 1024;

type Verdict = { status: number; body?: unknown; headers?: Record<string, string> };

const ACK: Verdict = { status: 200, body: { ok: true } };
/** Our failure to accept the request: Slack should retry (it does on any non-2xx). */
const RETRY: Verdict = { status: 503, body: { error: 'UNAVAILABLE', message: 'try again' } };
/** Signed by Slack but not understood: retrying the same bytes cannot help. */
const UNUSABLE: Verdict = { status: 400, body: { error: 'BAD_REQUEST', message: 'unrecognised payload' }, headers: { 'x-slack-no-retry': '1' } };

const header = (request: FastifyRequest, name: string): string | undefined => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/**
 * The question job an event asks for, or null for events the bot does not answer: anything but a
 * mention or a DM, edits and deletions (subtypes), and every bot's messages (its own included, which
 * Slack echoes back into the DM: answering them would loop).
 */
export function questionJob(teamId: string, eventId: string, event: unknown, receivedAt: number): QuestionJob | null {
  const mention = AppMentionSchema.safeParse(event);
  if (mention.success) {
    const e = mention.data;
    // In a DM Slack also sends message.im: answered there, once.
    if (e.subtype !== undefined || e.bot_id !== undefined || e.channel.startsWith('D')) return null;
    return {
      kind: 'question', eventId, teamId, channelId: e.channel, channelType: 'channel', userId: e.user, text: e.text, ts: e.ts,
      ...(e.thread_ts === undefined ? {} : { threadTs: e.thread_ts }), receivedAt,
    };
  }
  const im = ImMessageSchema.safeParse(event);
  if (im.success) {
    const e = im.data;
    if (e.subtype !== undefined || e.bot_id !== undefined || e.user === undefined) return null;
    return {
      kind: 'question', eventId, teamId, channelId: e.channel, channelType: 'im', userId: e.user, text: e.text, ts: e.ts,
      ...(e.thread_ts === undefined ? {} : { threadTs: e.thread_ts }), receivedAt,
    };
  }
  return null;
}

/** Registers POST /slack/events and POST /slack/interactions (in their own scope: they read raw bodies). */
export async function registerSlackRoutes(app: FastifyInstance, deps: SlackRouteDeps): Promise<void> {
  const prefix = deps.keyPrefix ?? 'astry:slack';
  const ttl = deps.dedupeTtlSeconds ?? 3600;
  const now = deps.now ?? Date.now;
  const warn = deps.onWarning ?? ((message: string, err?: unknown) => console.warn(message, err ?? ''));
  if (deps.signingSecret.trim() === '') throw new Error('the Slack signing secret is empty');
  if (ttl < MAX_TOLERANCE_SECONDS) throw new RangeError(`dedupeTtlSeconds must be at least ${MAX_TOLERANCE_SECONDS}`);

  /** Verifies the signature over the exact bytes received; null when it holds. */
  const reject = (request: FastifyRequest, raw: string): Verdict | null => {
    const verdict = verifySlackSignature(
      deps.signingSecret,
      { body: raw, signature: header(request, 'x-slack-signature'), timestamp: header(request, 'x-slack-request-timestamp') },
      now(),
      deps.toleranceSeconds ?? MAX_TOLERANCE_SECONDS,
    );
    if (verdict.ok) return null;
    warn(`slack: rejected request to ${request.url}: ${verdict.reason}`);
    return { status: 401, body: { error: 'UNAUTHENTICATED', message: 'invalid Slack request signature' } };
  };

  /**
   * Queues `job` once per `dedupeKey`. A repeat (Slack's retry, a replay) of queued work is acknowledged
   * and dropped; a retry that arrives while the first attempt is still queueing is asked to come back,
   * so the event is not lost if that attempt fails.
   */
  const enqueueOnce = async (dedupeKey: string, job: SlackJob, jobId: string): Promise<Verdict> => {
    const key = `${prefix}:seen:${dedupeKey}`;
    try {
      const claim = await claimOnce(deps.redis, key, ttl);
      if (claim === 'done') return { status: 200, body: { ok: true, duplicate: true } };
      if (claim === 'pending') return RETRY;
    } catch (err) {
      warn('slack: Redis unavailable, asking Slack to retry', err);
      return RETRY;
    }
    try {
      await deps.jobs.add(job, jobId);
      await markDone(deps.redis, key);
      return ACK;
    } catch (err) {
      // Not queued: forget the event so Slack's retry gets another chance.
      await releaseClaim(deps.redis, key).catch(() => undefined);
      warn('slack: could not queue, asking Slack to retry', err);
      return RETRY;
    }
  };

  const onEvent = async (raw: string): Promise<Verdict> => {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return UNUSABLE;
    }
    const challenge = UrlVerificationSchema.safeParse(json);
    if (challenge.success) return { status: 200, body: { challenge: challenge.data.challenge } };
    const callback = EventCallbackSchema.safeParse(json);
    if (!callback.success) return EnvelopeSchema.safeParse(json).success ? ACK : UNUSABLE;
    const { team_id: teamId, event_id: eventId, event } = callback.data;
    const job = questionJob(teamId, eventId, event, now());
    if (job === null) return ACK;
    return enqueueOnce(`event:${eventId}`, job, `event-${eventId}`);
  };

  const onInteraction = async (raw: string): Promise<Verdict> => {
    const payload = new URLSearchParams(raw).get('payload');
    let json: unknown;
    try {
      json = JSON.parse(payload ?? '');
    } catch {
      return UNUSABLE;
    }
    const parsed = BlockActionsSchema.safeParse(json);
    if (!parsed.success) return ACK;
    const p = parsed.data;
    const action = p.actions.find((a) => a.action_id === PRIVATE_ANSWER_ACTION);
    const channelId = p.container?.channel_id ?? p.channel?.id;
    const teamId = p.team?.id;
    if (!action?.value || !OFFER_ID.test(action.value) || channelId === undefined || teamId === undefined) return ACK;
    const job: SlackJob = {
      kind: 'private_answer', offerId: action.value, teamId, userId: p.user.id, channelId,
      ...(p.container?.thread_ts === undefined ? {} : { threadTs: p.container.thread_ts }), receivedAt: now(),
    };
    // Interactions carry no event id: the same signed body twice is a replay. A double click is two
    // bodies for one offer: the job id keeps it to one private answer.
    return enqueueOnce(`interaction:${createHash('sha256').update(raw).digest('hex')}`, job, `offer-${action.value}`);
  };

  const route = (handle: (raw: string) => Promise<Verdict>) => async (request: FastifyRequest, reply: FastifyReply) => {
    const raw = typeof request.body === 'string' ? request.body : '';
    const verdict = reject(request, raw) ?? (await handle(raw));
    void reply.code(verdict.status);
    if (verdict.headers) void reply.headers(verdict.headers);
    return verdict.body ?? '';
  };

  await app.register(async (scope) => {
    // The signature covers the exact bytes: keep the body as a string, whatever its content type.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_request, body, done) => done(null, body));
    scope.post('/slack/events', { schema: { hide: true } }, route(onEvent));
    scope.post('/slack/interactions', { schema: { hide: true } }, route(onInteraction));
  });
}
