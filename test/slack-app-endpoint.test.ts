import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { registerSlackRoutes } from '../api/slack/routes.ts';
import { env } from '../core/env.ts';
import { signSlackRequest } from '../fixtures/slack/app.ts';
import { PRIVATE_ANSWER_ACTION, type SlackJob } from '../slackbot/jobs.ts';

const SECRET = 'test-signing-secret';

/** Records queued jobs; `failNext` makes the next add throw, as a Redis outage would. */
class FakeJobs {
  readonly added: { job: SlackJob; jobId: string }[] = [];
  failNext = 0;
  /** While set, add waits for it: a slow queue. */
  gate: Promise<void> | undefined;
  async add(job: SlackJob, jobId: string): Promise<void> {
    await this.gate;
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new Error('queue unavailable');
    }
    this.added.push({ job, jobId });
  }
}

const now = () => Math.floor(Date.now() / 1000);

function envelope(event: Record<string, unknown>, eventId = `Ev0${randomBytes(5).toString('hex').toUpperCase()}`): string {
  return JSON.stringify({ type: 'event_callback', team_id: 'T0ASTRY', api_app_id: 'A0ASTRY', event_id: eventId, event_time: now(), event });
}

const mention = (text = '<@U0ASTRY> what is the plan?') => ({
  type: 'app_mention', user: 'U0ALICE', text, ts: '1790900000.000100', channel: 'C0GENERAL', event_ts: '1790900000.000100',
});

describe('the Slack Events API endpoint (real Redis)', () => {
  let redis: Redis;
  let jobs: FakeJobs;
  let a: FastifyInstance;
  let b: FastifyInstance;
  const keyPrefix = `astry-test:${randomBytes(4).toString('hex')}`;

  async function api(): Promise<FastifyInstance> {
    const app = Fastify();
    await registerSlackRoutes(app, { signingSecret: SECRET, redis, jobs, keyPrefix, onWarning: () => undefined });
    await app.ready();
    return app;
  }

  function post(app: FastifyInstance, url: string, body: string, opts: { ts?: number; signature?: string; contentType?: string; headers?: Record<string, string> } = {}) {
    const ts = opts.ts ?? now();
    return app.inject({
      method: 'POST',
      url,
      payload: body,
      headers: {
        'content-type': opts.contentType ?? 'application/json',
        'x-slack-request-timestamp': String(ts),
        'x-slack-signature': opts.signature ?? signSlackRequest(SECRET, ts, body),
        ...opts.headers,
      },
    });
  }

  before(async () => {
    redis = new Redis(env().REDIS_URL);
    jobs = new FakeJobs();
    // Two API processes sharing one Redis, as behind a load balancer.
    a = await api();
    b = await api();
  });
  after(async () => {
    await a?.close();
    await b?.close();
    const keys = await redis.keys(`${keyPrefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  test('answers the url_verification challenge, only when signed', async () => {
    const body = JSON.stringify({ type: 'url_verification', token: 'x', challenge: 'c-123' });
    const ok = await post(a, '/slack/events', body);
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { challenge: 'c-123' });
    assert.equal((await post(a, '/slack/events', body, { signature: 'v0=00' })).statusCode, 401);
  });

  test('rejects forged signatures, tampered bodies, missing headers and timestamps outside 5 minutes', async () => {
    const body = envelope(mention());
    const forged = signSlackRequest('not-the-secret', now(), body);
    assert.equal((await post(a, '/slack/events', body, { signature: forged })).statusCode, 401);
    const signedOther = signSlackRequest(SECRET, now(), body);
    assert.equal((await post(a, '/slack/events', body.replace('what is', 'WHAT IS'), { signature: signedOther })).statusCode, 401);
    const bare = await a.inject({ method: 'POST', url: '/slack/events', payload: body, headers: { 'content-type': 'application/json' } });
    assert.equal(bare.statusCode, 401);
    assert.equal((await post(a, '/slack/events', body, { ts: now() - 301 })).statusCode, 401, 'stale');
    assert.equal((await post(a, '/slack/events', body, { ts: now() + 301 })).statusCode, 401, 'from the future');
    assert.equal(jobs.added.length, 0, 'nothing rejected was queued');
    assert.equal((await post(a, '/slack/events', body, { ts: now() - 240 })).statusCode, 200, 'inside the window');
    assert.equal(jobs.added.length, 1);
  });

  test('an event is queued once, whichever process receives Slack\'s retries or a replay', async () => {
    const before = jobs.added.length;
    const body = envelope(mention());
    const first = await post(a, '/slack/events', body);
    assert.equal(first.statusCode, 200);
    const retry = await post(b, '/slack/events', body, { headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' } });
    assert.equal(retry.statusCode, 200);
    assert.equal(retry.json().duplicate, true);
    const replay = await post(a, '/slack/events', body);
    assert.equal(replay.json().duplicate, true);
    assert.equal(jobs.added.length, before + 1);
    const job = jobs.added.at(-1);
    assert.equal(job?.job.kind, 'question');
    assert.match(job?.jobId ?? '', /^event-Ev0/);
  });

  test('when the work cannot be queued, Slack is asked to retry and the retry is accepted', async () => {
    const before = jobs.added.length;
    const body = envelope(mention());
    jobs.failNext = 1;
    const failed = await post(a, '/slack/events', body);
    assert.equal(failed.statusCode, 503);
    const retry = await post(b, '/slack/events', body, { headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_error' } });
    assert.equal(retry.statusCode, 200);
    assert.equal(retry.json().duplicate, undefined);
    assert.equal(jobs.added.length, before + 1);
  });

  test('a retry arriving while the first attempt is still queueing is asked to come back, not dropped', async () => {
    const before = jobs.added.length;
    const body = envelope(mention());
    let open: () => void = () => undefined;
    jobs.gate = new Promise((resolve) => (open = resolve));
    jobs.failNext = 1;
    const first = post(a, '/slack/events', body);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const early = await post(b, '/slack/events', body, { headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' } });
    assert.equal(early.statusCode, 503, 'still pending: come back later');
    jobs.gate = undefined;
    open();
    assert.equal((await first).statusCode, 503, 'the first attempt failed to queue');
    const later = await post(b, '/slack/events', body, { headers: { 'x-slack-retry-num': '2', 'x-slack-retry-reason': 'http_error' } });
    assert.equal(later.statusCode, 200);
    assert.equal(jobs.added.length, before + 1, 'the event is not lost');
  });

  test('acknowledges within Slack\'s 3 seconds, with the work left to the queue', async () => {
    const start = performance.now();
    const res = await post(a, '/slack/events', envelope(mention()));
    assert.equal(res.statusCode, 200);
    assert.ok(performance.now() - start < 500, `${performance.now() - start} ms`);
  });

  test('ignores bot messages (its own DM echoes included), edits, mentions inside DMs and other events', async () => {
    const before = jobs.added.length;
    const ignored = [
      { type: 'message', channel_type: 'im', channel: 'D0ALICE', user: 'U0ASTRY', bot_id: 'B0ASTRY', text: 'an answer', ts: '1790900000.000200' },
      { type: 'message', channel_type: 'im', channel: 'D0ALICE', subtype: 'message_changed', ts: '1790900000.000300' },
      { ...mention(), channel: 'D0ALICE' },
      { type: 'message', channel_type: 'channel', channel: 'C0GENERAL', user: 'U0ALICE', text: 'hi', ts: '1790900000.000400' },
      { type: 'reaction_added', user: 'U0ALICE', reaction: 'eyes' },
    ];
    for (const event of ignored) assert.equal((await post(a, '/slack/events', envelope(event))).statusCode, 200);
    assert.equal((await post(a, '/slack/events', JSON.stringify({ type: 'app_rate_limited', minute_rate_limited: 1 }))).statusCode, 200);
    assert.equal(jobs.added.length, before, 'nothing queued');
    const dm = { type: 'message', channel_type: 'im', channel: 'D0ALICE', user: 'U0ALICE', text: 'what is the plan?', ts: '1790900000.000500' };
    await post(a, '/slack/events', envelope(dm));
    const queued = jobs.added.at(-1)?.job;
    assert.ok(queued?.kind === 'question');
    assert.deepEqual([queued.channelType, queued.userId, queued.channelId, queued.text], ['im', 'U0ALICE', 'D0ALICE', 'what is the plan?']);
  });

  test('a signed body that is not JSON is refused without retries', async () => {
    const res = await post(a, '/slack/events', '{not json');
    assert.equal(res.statusCode, 400);
    assert.equal(res.headers['x-slack-no-retry'], '1');
  });

  test('a click on "send me the full answer privately" is verified and queued once per offer', async () => {
    const before = jobs.added.length;
    const payload = (actionTs: string) => new URLSearchParams({
      payload: JSON.stringify({
        type: 'block_actions', user: { id: 'U0ALICE' }, team: { id: 'T0ASTRY' }, channel: { id: 'C0GENERAL' },
        container: { type: 'message', channel_id: 'C0GENERAL', message_ts: '1790900000.000600', thread_ts: '1790900000.000100', is_ephemeral: true },
        actions: [{ action_id: PRIVATE_ANSWER_ACTION, value: 'B'.repeat(22), type: 'button', action_ts: actionTs }],
      }),
    }).toString();
    const form = 'application/x-www-form-urlencoded';
    assert.equal((await post(a, '/slack/interactions', payload('1'), { contentType: form, signature: 'v0=bad' })).statusCode, 401);
    assert.equal((await post(a, '/slack/interactions', payload('1'), { contentType: form })).statusCode, 200);
    assert.equal((await post(b, '/slack/interactions', payload('1'), { contentType: form })).json().duplicate, true, 'a replay');
    assert.equal(jobs.added.length, before + 1);
    const added = jobs.added.at(-1);
    assert.equal(added?.jobId, `offer-${'B'.repeat(22)}`, 'a double click maps to the same job id');
    assert.equal(added?.job.kind, 'private_answer');
  });
});
