import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { WebClient } from '@slack/web-api';
import { verifySlackSignature } from '../api/slack/verify.ts';
import { signSlackRequest } from '../fixtures/slack/app.ts';
import { generateCompany } from '../fixtures/slack/company.ts';
import { SlackEmulator } from '../fixtures/slack/emulator.ts';
import { CHANNEL, USER } from '../fixtures/slack/ids.ts';
import { composeQuestion } from '../slackbot/conversation.ts';
import { answerMessage, escapeMrkdwn, numberCitations } from '../slackbot/format.ts';
import { questionText } from '../slackbot/handler.ts';
import type { AskResult } from '../worker/ask.ts';

function result(text: string, names: string[], citations: { title: string; url: string }[], usd = 0): AskResult {
  return {
    requestId: 'r1',
    answer: {
      text, citations: names.map((name) => ({ name })), mode: 'extractive', model: 'extractive', provider: 'extractive',
      stop: 'completed', partial: false, usage: { inputTokens: 0, outputTokens: 0, usd, toolCalls: 3 },
    },
    citations: citations.map((c, i) => ({ documentId: String(i + 1), ...c })),
    materialized: [],
    retrievalPath: 'exact',
    timings: { identity: 0, retrieval: 0, materialize: 0, toolRunnerStart: 0, model: 0, audit: 0 },
  };
}

describe('Slack request signatures', () => {
  const body = '{"type":"event_callback"}';
  const at = 1_800_000_000;
  test('a correct signature inside the window is accepted', () => {
    const verdict = verifySlackSignature('s', { body, signature: signSlackRequest('s', at, body), timestamp: String(at) }, at * 1000 + 299_000);
    assert.deepEqual(verdict, { ok: true });
  });
  test('a wrong secret, a changed body, bad headers or a timestamp 5 minutes away either way are refused', () => {
    const sig = signSlackRequest('s', at, body);
    const check = (req: { body?: string; signature?: string | undefined; timestamp?: string | undefined }, nowMs = at * 1000) =>
      verifySlackSignature('s', { body, signature: sig, timestamp: String(at), ...req }, nowMs);
    assert.deepEqual(check({ signature: signSlackRequest('t', at, body) }), { ok: false, reason: 'bad_signature' });
    assert.deepEqual(check({ body: `${body} ` }), { ok: false, reason: 'bad_signature' });
    assert.deepEqual(check({ signature: undefined }), { ok: false, reason: 'missing_headers' });
    assert.deepEqual(check({ timestamp: '17e8' }), { ok: false, reason: 'missing_headers' });
    assert.deepEqual(check({}, (at + 301) * 1000), { ok: false, reason: 'stale_timestamp' });
    assert.deepEqual(check({}, (at - 301) * 1000), { ok: false, reason: 'stale_timestamp' });
  });
});

describe('what the bot says', () => {
  test('quoted document text cannot ping the channel, mention people or disguise links', () => {
    const r = result('- <!channel> ask <@U0BOB> at <https://evil.example|our wiki> & more [doc-001.txt]', ['doc-001.txt'], [{ title: 'T', url: 'https://x.slack.com/archives/C1' }]);
    const shown = JSON.stringify(answerMessage(r, { scope: 'private' }).blocks);
    assert.ok(!shown.includes('<!channel>') && !shown.includes('<@U0BOB>') && !shown.includes('<https://evil'));
    assert.ok(shown.includes('&lt;!channel&gt;'));
    assert.equal(escapeMrkdwn('a & <b>'), 'a &amp; &lt;b&gt;');
  });

  test('sandbox file citations become numbered sources linking to the source items', () => {
    const r = result('one [doc-002.txt] two [doc-001.txt, doc-002.txt] [sic]', ['doc-002.txt', 'doc-001.txt'], [
      { title: 'Second | odd > title', url: 'https://d.slack.com/archives/C2' },
      { title: 'First', url: 'https://d.slack.com/archives/C1' },
    ]);
    assert.equal(numberCitations(r), 'one [1] two [2, 1] [sic]');
    const shown = JSON.stringify(answerMessage(r, { scope: 'channel' }).blocks);
    assert.ok(shown.includes('[1] <https://d.slack.com/archives/C2|Second   odd &gt; title>'));
    assert.ok(shown.includes('Spent $0.0000 (extractive, no language model)'));
    assert.ok(shown.includes('everyone in this conversation can read'));
  });

  test('a long answer is split into sections Slack accepts', () => {
    const msg = answerMessage(result(`${'word '.repeat(2000)}\n${'more '.repeat(1000)}`, [], []), { scope: 'private' });
    const texts = msg.blocks.filter((b) => b.type === 'section').map((b) => JSON.stringify(b).length);
    assert.ok(texts.length >= 3);
    for (const b of msg.blocks) if (b.type === 'section') assert.ok(((b.text as { text: string }).text).length <= 3000);
    assert.ok(msg.text.length <= 3000);
  });

  test('the question is the text without the bot mention, unescaped', () => {
    assert.equal(questionText('<@U0ASTRY>  what about A &amp; B &lt;3?', 'U0ASTRY'), 'what about A & B <3?');
    assert.equal(questionText('<@U0ASTRY|astry>', 'U0ASTRY'), '');
  });

  test('follow-ups carry the previous questions (and model answers), bounded, oldest dropped first', () => {
    assert.equal(composeQuestion([], 'q'), 'q');
    const composed = composeQuestion(
      [{ question: 'first?', answer: 'quotes', mode: 'extractive' }, { question: 'second?', answer: 'reasoned', mode: 'model' }],
      'third?',
    );
    assert.equal(composed, 'Q: first?\nQ: second?\nA: reasoned\nQ: third?');
    const long = Array.from({ length: 20 }, (_, i) => ({ question: `question ${i} ${'x'.repeat(380)}`, answer: '', mode: 'extractive' as const }));
    const bounded = composeQuestion(long, 'now?');
    assert.ok(bounded.length < 2100);
    assert.ok(bounded.includes('question 19') && !bounded.includes('question 0 '));
    assert.ok(bounded.endsWith('Q: now?'));
  });
});

describe('the Slack emulator, app side', () => {
  const company = generateCompany();

  test('records what the bot posts and shows, with Slack\'s errors', async () => {
    const emu = await SlackEmulator.start(company);
    try {
      const web = new WebClient(emu.token, { slackApiUrl: emu.url, retryConfig: { retries: 0 } });
      const posted = await web.chat.postMessage({ channel: CHANNEL.general, text: 'hello', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'hello' } }] });
      assert.equal(posted.ok, true);
      const eph = await web.chat.postEphemeral({ channel: CHANNEL.general, user: USER.alice, text: 'psst', thread_ts: String(posted.ts) });
      assert.equal(typeof eph.message_ts, 'string');
      assert.deepEqual(emu.posts.map((p) => [p.kind, p.channel, p.user, p.text]), [
        ['message', CHANNEL.general, undefined, 'hello'],
        ['ephemeral', CHANNEL.general, USER.alice, 'psst'],
      ]);
      assert.equal(emu.posts[0]?.blocks.length, 1);
      const history = await web.conversations.history({ channel: CHANNEL.general, limit: 1 });
      assert.equal(history.messages?.[0]?.bot_id, company.botId, 'the bot\'s message is in history, marked as the app\'s');
      await assert.rejects(web.chat.postEphemeral({ channel: CHANNEL.privatePlans, user: USER.bob, text: 'x' }), /user_not_in_channel/);
      await assert.rejects(web.chat.postMessage({ channel: CHANNEL.secretNoBot, text: 'x' }), /channel_not_found/);
      await assert.rejects(web.chat.postMessage({ channel: CHANNEL.general, text: 'x', thread_ts: '1.000001' }), /thread_not_found/);
      const opened = await web.conversations.open({ users: USER.bob });
      assert.equal(opened.channel?.id, 'D0BOB');
      assert.equal((await web.conversations.open({ users: USER.bob })).already_open, true);
      await web.chat.postMessage({ channel: 'D0BOB', text: 'dm' });
      const members = await web.conversations.members({ channel: 'D0BOB' });
      assert.deepEqual(members.members, [USER.bob, USER.astry]);
    } finally {
      await emu.close();
    }
  });

  test('delivers signed events and retries them like Slack when the app fails or is slow', async () => {
    const seen: { headers: IncomingHttpHeaders; body: string }[] = [];
    let answer = [500, 200];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ headers: req.headers, body });
        const status = answer.shift() ?? 200;
        if (status === 0) return; // never answers: Slack times out
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
    const emu = await SlackEmulator.start(company);
    try {
      const app = emu.installApp({ eventsUrl: url, signingSecret: 'sec', retryDelaysMs: [10, 10, 10], ackTimeoutMs: 300 });
      const sent = await app.mention(CHANNEL.general, USER.alice, 'what is up?');
      assert.deepEqual(sent.delivery.attempts.map((a) => [a.status, a.failure]), [[500, 'http_error'], [200, undefined]]);
      assert.equal(seen[1]?.headers['x-slack-retry-num'], '1');
      assert.equal(seen[1]?.headers['x-slack-retry-reason'], 'http_error');
      for (const s of seen) {
        const ts = Number(s.headers['x-slack-request-timestamp']);
        assert.equal(s.headers['x-slack-signature'], signSlackRequest('sec', ts, s.body));
      }
      const event = JSON.parse(seen[0]?.body ?? '{}') as { type: string; event: { type: string; ts: string; text: string } };
      assert.equal(event.type, 'event_callback');
      assert.equal(event.event.type, 'app_mention');
      assert.equal(event.event.ts, sent.ts);
      assert.match(event.event.text, /^<@U0ASTRY> what is up\?$/);

      seen.length = 0;
      answer = [0, 0, 0, 0];
      const slow = await app.directMessage(USER.bob, 'hello?');
      assert.equal(slow.delivery.acked, false);
      assert.deepEqual(slow.delivery.attempts.map((a) => a.failure), ['http_timeout', 'http_timeout', 'http_timeout', 'http_timeout'], 'one try and three retries');
      assert.equal(seen.at(-1)?.headers['x-slack-retry-num'], '3');
      assert.equal(JSON.parse(seen[0]?.body ?? '{}').event.channel_type, 'im');
    } finally {
      await emu.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
