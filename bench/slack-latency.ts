// Slack latency benchmark: from the moment emulated Slack sends a signed event to the moment the
// bot's answer is posted (chat.postMessage recorded by the emulator), through the real path: API
// endpoint (verify, dedupe, enqueue) -> BullMQ -> Slack bot worker (asker, audience from
// conversations.members, thread history) -> ask queue -> query worker (retrieval, sandbox, confined
// extractive answerer, audit) -> chat.postMessage. Also Slack's view of the acknowledgement.
// Usage: node bench/slack-latency.ts [--questions 40] [--concurrency 1] [--warmup 4]
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { CHANNEL, CODEWORD, FILE_CODEWORD, USER } from '../fixtures/slack/ids.ts';
import type { BotPost } from '../fixtures/slack/state.ts';
import type { Sent } from '../fixtures/slack/app.ts';
import { startHarness } from '../test/support/harness.ts';
import { startQueryStack } from '../test/support/query-stack.ts';
import { startSlackAppStack, type SlackAppStack } from '../test/support/slack-app.ts';
import { cell, summarize, table } from './query/stats.ts';

const { values } = parseArgs({
  options: {
    questions: { type: 'string', default: '40' },
    concurrency: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '4' },
  },
});

function positive(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${name} must be a whole number, got ${raw}`);
  return n;
}
const questions = positive('questions', values.questions);
const concurrency = Math.max(1, positive('concurrency', values.concurrency));
const warmup = positive('warmup', values.warmup);

/** The mix: DMs (asker's set) and channel mentions (audience from conversations.members, possibly an offer). */
type Kind = 'dm' | 'channel';
const MIX: { kind: Kind; ask: (s: SlackAppStack) => Promise<Sent> }[] = [
  { kind: 'dm', ask: (s) => s.app.directMessage(USER.alice, `What is the plan mentioned with ${CODEWORD.privatePlans}?`) },
  { kind: 'channel', ask: (s) => s.app.mention(CHANNEL.engineering, USER.bob, `What is going on with ${CODEWORD.engineering}?`) },
  { kind: 'dm', ask: (s) => s.app.directMessage(USER.bob, `What does the spec say about ${FILE_CODEWORD.specPdf}?`) },
  { kind: 'channel', ask: (s) => s.app.mention(CHANNEL.engineering, USER.alice, `What is the plan mentioned with ${CODEWORD.privatePlans}?`) },
  { kind: 'channel', ask: (s) => s.app.mention(CHANNEL.general, USER.alice, `What is on the roadmap ${FILE_CODEWORD.roadmapPdf}?`) },
];

interface Sample {
  kind: Kind;
  /** Slack sends the event -> the answer is posted, ms. */
  endToEnd: number;
  /** Slack sends the event -> it has the endpoint's 2xx, ms. */
  ack: number;
}

async function one(s: SlackAppStack, i: number, waitForPost: (p: (post: BotPost) => boolean) => Promise<BotPost>): Promise<Sample> {
  const item = MIX[i % MIX.length];
  if (!item) throw new Error('empty mix');
  const sent = await item.ask(s);
  const attempt = sent.delivery.attempts[0];
  if (!attempt || !sent.delivery.acked) throw new Error(`event ${sent.eventId} was not acknowledged`);
  const post = await waitForPost((p) => p.kind === 'message' && p.channel === sent.channel && p.threadTs === sent.ts);
  return { kind: item.kind, endToEnd: post.at - attempt.sentAt, ack: attempt.ms };
}

console.log('setting up: fresh database, Slack emulator, sync (Temporal), query worker, API + Slack bot worker…');
const h = await startHarness();
await h.sync();
const q = await startQueryStack(h);
const s = await startSlackAppStack(h, q, { concurrency: Math.max(4, concurrency) });
// Where the time goes: the bot's wait on the query worker, and the worker's own steps.
const inner = s.deps.asker;
const asks: { ms: number; steps: number }[] = [];
let measuring = false;
s.deps.asker = {
  async ask(data, timeoutMs) {
    const start = performance.now();
    const result = await inner.ask(data, timeoutMs);
    const t = result.timings;
    if (measuring) asks.push({ ms: performance.now() - start, steps: t.identity + t.retrieval + t.materialize + t.toolRunnerStart + t.model + t.audit });
    return result;
  },
};
try {
  const wait = (p: (post: BotPost) => boolean) => h.emulator.waitForPost(p, 120_000);
  for (let i = 0; i < warmup; i++) await one(s, i, wait);
  measuring = true;
  const samples: Sample[] = [];
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < questions) {
        const i = next++;
        samples.push(await one(s, i, wait));
      }
    }),
  );
  const wallS = (performance.now() - started) / 1000;
  const rows = (['dm', 'channel'] as const).map((kind) => {
    const ofKind = samples.filter((x) => x.kind === kind);
    return [kind, String(ofKind.length), cell(summarize(ofKind.map((x) => x.endToEnd))), cell(summarize(ofKind.map((x) => x.ack)))];
  });
  rows.push(['all', String(samples.length), cell(summarize(samples.map((x) => x.endToEnd))), cell(summarize(samples.map((x) => x.ack)))]);
  console.log(`\nSlack event -> answer posted, extractive model, ${questions} questions, concurrency ${concurrency}, ${cpus().length} CPUs`);
  console.log(table(['kind', 'n', 'event->answer ms p50 / p95', 'ack ms p50 / p95'], rows));
  console.log(`throughput: ${(samples.length / wallS).toFixed(2)} answers/s`);
  console.log(`of which, the bot waiting on the query worker (queue round trip + five steps): ${cell(summarize(asks.map((a) => a.ms)))} ms`);
  console.log(`of which, the query worker's five steps themselves: ${cell(summarize(asks.map((a) => a.steps)))} ms`);
} finally {
  await s.close();
  await q.close();
  await h.close();
}
