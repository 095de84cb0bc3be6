// Sync throughput benchmark: a full Slack sync of a large seeded workspace, the raw embedding
// throughput of the same model on the same texts (the floor the pipeline approaches), and
// incremental runs (no change, then ~1% of messages new) as a ratio of the full sync.
// Usage: node bench/sync-throughput.ts [--scale 40] [--seed 42] [--change-percent 1]
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { AutoTokenizer } from '@huggingface/transformers';
import { env } from '../core/env.ts';
import { countMessages } from '../fixtures/slack/company.ts';
import type { SlackEmulator } from '../fixtures/slack/emulator.ts';
import { mulberry32, reply, sentence } from '../fixtures/slack/prng.ts';
import type { RunSummary } from '../db/runs.ts';
import type { Embedder } from '../pipeline/embed.ts';
import { loadModels, startHarness } from '../test/support/harness.ts';

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '40' },
    seed: { type: 'string', default: '42' },
    'change-percent': { type: 'string', default: '1' },
  },
});

function positive(name: string, raw: string, integer: boolean): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new RangeError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got ${raw}`);
  return n;
}

const scale = positive('scale', values.scale, true);
const seed = positive('seed', values.seed, true);
const changePercent = positive('change-percent', values['change-percent'], false);

const seconds = (ms: number): number => Math.round(ms) / 1000;
const rate = (n: number, ms: number): number => (ms > 0 ? Math.round((n / ms) * 10_000) / 10 : 0);
/** Peak resident set of this process so far, in MiB (resourceUsage reports KiB). */
const peakRssMiB = (): number => Math.round(process.resourceUsage().maxRSS / 1024);

/** Busy CPU seconds of the whole host so far (all processes), from /proc/stat; 0 where there is none. */
function hostBusySeconds(): number {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return (fields.reduce((a, b) => a + b, 0) - idle) / 100;
  } catch {
    return 0;
  }
}

interface Timed<T> {
  value: T;
  ms: number;
  /** CPU seconds of this process (model, worker, Slack emulator) during the work. */
  cpuSeconds: number;
  /** CPU seconds of everything else on the host (Postgres, Temporal server, and any unrelated load). */
  otherCpuSeconds: number;
}

async function timed<T>(work: () => Promise<T>): Promise<Timed<T>> {
  const cpu = process.cpuUsage();
  const host = hostBusySeconds();
  const start = performance.now();
  const value = await work();
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  const r = (x: number) => Math.round(x * 10) / 10;
  return { value, ms, cpuSeconds: r(cpuSeconds), otherCpuSeconds: r(Math.max(0, hostBusySeconds() - host - cpuSeconds)) };
}

function cpuOf(t: Timed<unknown>) {
  return { cpuSeconds: t.cpuSeconds, otherCpuSeconds: t.otherCpuSeconds };
}

/** Slack Web API calls the emulator answered since the last reset, by method. */
function slackCalls(emulator: SlackEmulator): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const r of emulator.requests) calls[r.method] = (calls[r.method] ?? 0) + 1;
  emulator.resetRequests();
  return calls;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

/** Wraps the pipeline's embedder: records every call's texts and the wall time spent in it. */
function recordingEmbedder(inner: Embedder) {
  const state = { calls: [] as string[][], ms: 0, recording: true };
  const embedder: Embedder = {
    async embed(texts) {
      if (state.recording) state.calls.push([...texts]);
      const start = performance.now();
      try {
        return await inner.embed(texts);
      } finally {
        state.ms += performance.now() - start;
      }
    },
  };
  return { embedder, state };
}

/**
 * Posts `count` new messages spread round-robin over the channels the bot reads (seeded order):
 * about half are replies to an existing thread of that channel, the rest new top-level messages.
 * Returns how many documents that should re-index (distinct threads touched + distinct day docs).
 */
function changeMessages(emulator: SlackEmulator, count: number, rngSeed: number): { posted: number; replies: number; expectedDocs: number } {
  const rng = mulberry32(rngSeed);
  const company = emulator.company;
  const people = new Map(company.users.map((u) => [u.id, u]));
  const eligible = company.channels
    .filter((c) => c.is_channel && !c.is_archived && c.members.includes(company.botUserId))
    .map((c) => ({
      id: c.id,
      authors: c.members.filter((id) => { const u = people.get(id); return u !== undefined && !u.is_bot && !u.deleted; }),
      threads: (company.messages[c.id] ?? []).filter((m) => (m.reply_count ?? 0) > 0 && m.thread_ts === m.ts).map((m) => m.ts),
    }))
    .filter((c) => c.authors.length > 0)
    .map((c) => ({ c, key: rng.next() }))
    .sort((a, b) => a.key - b.key)
    .map(({ c }) => c);
  if (eligible.length === 0) throw new Error('no channel to post in');
  const threads = new Set<string>();
  const days = new Set<string>();
  let replies = 0;
  for (let i = 0; i < count; i++) {
    const channel = eligible[i % eligible.length];
    if (!channel) continue;
    const author = rng.pick(channel.authors);
    if (channel.threads.length > 0 && rng.chance(0.5)) {
      const threadTs = rng.pick(channel.threads);
      emulator.postMessage(channel.id, author, reply(rng), { threadTs });
      threads.add(`${channel.id}:${threadTs}`);
      replies++;
    } else {
      const ts = emulator.postMessage(channel.id, author, sentence(rng));
      days.add(`${channel.id}:${new Date(Number(ts) * 1000).toISOString().slice(0, 10)}`);
    }
  }
  return { posted: count, replies, expectedDocs: threads.size + days.size };
}

function runCounts(run: RunSummary) {
  return { status: run.status, indexed: run.indexed, unchanged: run.unchanged, chunks: run.chunks, deleted: run.deleted, errors: run.errors };
}

const loadAtStart = loadavg().map((x) => Math.round(x * 100) / 100);
const setupStart = performance.now();
const models = await loadModels();
const harness = await startHarness({ scale, seed, worker: false });
// Production settings rather than the harness's test ones: 32 documents per pipeline batch.
delete harness.deps.batchSize;
const recorder = recordingEmbedder(models.embedder);
harness.deps.embedder = recorder.embedder;
const chunking = { ms: 0 };
const chunk = models.chunker.chunk.bind(models.chunker);
models.chunker.chunk = (text, opts) => {
  const start = performance.now();
  try {
    return chunk(text, opts);
  } finally {
    chunking.ms += performance.now() - start;
  }
};
// Temporal's runtime turns these signals into a worker shutdown, which leaves the running sync
// waiting forever; an interrupted benchmark should still drop its database.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`${signal}: dropping the benchmark database`);
    void harness.db.drop().finally(() => process.exit(130));
  });
}
await harness.startWorker();
const tokenizer = await AutoTokenizer.from_pretrained(env().ASTRY_EMBED_MODEL);
// One small forward pass first, so ONNX session warm-up is charged to neither side.
await models.embedder.embed(['warm-up', 'a second warm-up sentence']);
const setupMs = performance.now() - setupStart;
const messages = countMessages(harness.emulator.company);
// The production heartbeat timeout (60 s) rather than the harness's 10 s: a 32-document batch is
// embedded between two heartbeats, and on a loaded host that can take longer than 10 s.
const sync = () => harness.sync({ heartbeatTimeoutSeconds: 60 });
const rssAfterSetup = peakRssMiB();
const embedBatch = env().ASTRY_EMBED_BATCH;
console.log(`scale ${scale} (seed ${seed}): ${messages} messages, ${harness.emulator.company.channels.length} conversations; embedding batch ${embedBatch} (ASTRY_EMBED_BATCH); setup ${seconds(setupMs)} s`);

try {
  // Heap and native memory peaks during the full sync (RSS alone does not say whose memory it is).
  const memory = { heapMiB: 0, externalMiB: 0 };
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    memory.heapMiB = Math.max(memory.heapMiB, Math.round(m.heapUsed / 2 ** 20));
    memory.externalMiB = Math.max(memory.externalMiB, Math.round(m.external / 2 ** 20));
  }, 200);
  harness.emulator.resetRequests();
  const full = await timed(sync);
  clearInterval(sampler);
  const fullCalls = slackCalls(harness.emulator);
  const rssAfterFull = peakRssMiB();
  const embedCalls = recorder.state.calls;
  const texts = embedCalls.flat();
  const syncEmbedMs = recorder.state.ms;
  const syncChunkMs = chunking.ms;
  recorder.state.recording = false;
  console.log(`full sync: ${seconds(full.ms)} s, ${full.value.indexed} documents, ${full.value.chunks} chunks`);
  if (texts.length !== full.value.chunks) {
    console.log(`warning: ${texts.length} texts embedded for ${full.value.chunks} chunks stored (a retried activity redid work?)`);
  }

  // Raw floor: the exact texts the pipeline embedded, through the same LocalEmbedder instance,
  // first grouped as the pipeline called it (per 32-document batch), then as one sorted call.
  const rawSame = await timed(async () => { for (const call of embedCalls) await models.embedder.embed(call); });
  const rawOne = await timed(() => models.embedder.embed(texts));
  const lengths = texts.map((t) => t.length).sort((a, b) => a - b);
  // Tokens as the model sees them ([CLS] and [SEP] included, padding not).
  const tokens = texts.map((t) => tokenizer.encode(t).length).sort((a, b) => a - b);
  const tokenTotal = tokens.reduce((a, b) => a + b, 0);
  console.log(`raw embedding: ${seconds(rawSame.ms)} s as batched by the pipeline, ${seconds(rawOne.ms)} s as one call`);

  const noChange = await timed(sync);
  const noChangeCalls = slackCalls(harness.emulator);
  console.log(`incremental, no change: ${seconds(noChange.ms)} s`);

  const changeCount = Math.max(1, Math.round((messages * changePercent) / 100));
  const change = changeMessages(harness.emulator, changeCount, seed + 1);
  recorder.state.ms = 0;
  chunking.ms = 0;
  const incremental = await timed(sync);
  const incrementalCalls = slackCalls(harness.emulator);
  console.log(`incremental, ${change.posted} new messages: ${seconds(incremental.ms)} s`);

  const report = {
    bench: 'sync-throughput',
    scale, seed, embedBatch, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memGiB: Math.round(totalmem() / 2 ** 30), node: process.version,
    loadAverage: { start: loadAtStart, end: loadavg().map((x) => Math.round(x * 100) / 100) },
    messages,
    setupSeconds: seconds(setupMs),
    full: {
      ...runCounts(full.value),
      seconds: seconds(full.ms),
      docsPerSecond: rate(full.value.indexed, full.ms),
      chunksPerSecond: rate(full.value.chunks, full.ms),
      embedSeconds: seconds(syncEmbedMs),
      embedShare: Math.round((syncEmbedMs / full.ms) * 1000) / 1000,
      chunkSeconds: seconds(syncChunkMs),
      embedCalls: embedCalls.length,
      ...cpuOf(full),
      slackCalls: fullCalls,
      peakHeapMiB: memory.heapMiB,
      peakExternalMiB: memory.externalMiB,
    },
    texts: { count: texts.length, meanChars: Math.round(lengths.reduce((a, b) => a + b, 0) / Math.max(1, lengths.length)), p50Chars: percentile(lengths, 0.5), p95Chars: percentile(lengths, 0.95),
      tokens: tokenTotal, p50Tokens: percentile(tokens, 0.5), p95Tokens: percentile(tokens, 0.95), maxTokens: tokens.at(-1) ?? 0 },
    rawEmbedding: {
      pipelineBatching: { seconds: seconds(rawSame.ms), textsPerSecond: rate(texts.length, rawSame.ms), tokensPerSecond: Math.round(rate(tokenTotal, rawSame.ms)), ...cpuOf(rawSame) },
      oneCall: { seconds: seconds(rawOne.ms), textsPerSecond: rate(texts.length, rawOne.ms), tokensPerSecond: Math.round(rate(tokenTotal, rawOne.ms)), ...cpuOf(rawOne) },
    },
    // Pipeline chunks/s over raw chunks/s (pipeline's batching): 1.0 would mean only embedding costs time.
    pipelineToRawChunks: Math.round((rate(full.value.chunks, full.ms) / Math.max(0.1, rate(texts.length, rawSame.ms))) * 1000) / 1000,
    noChange: {
      ...runCounts(noChange.value), seconds: seconds(noChange.ms), ratioToFull: Math.round((noChange.ms / full.ms) * 1000) / 1000,
      ...cpuOf(noChange), slackCalls: noChangeCalls,
    },
    incremental: {
      ...runCounts(incremental.value),
      changedMessages: change.posted, replies: change.replies, expectedDocs: change.expectedDocs,
      seconds: seconds(incremental.ms), ratioToFull: Math.round((incremental.ms / full.ms) * 1000) / 1000,
      embedSeconds: seconds(recorder.state.ms), chunkSeconds: seconds(chunking.ms),
      ...cpuOf(incremental), slackCalls: incrementalCalls,
    },
    peakRssMiB: { afterSetup: rssAfterSetup, afterFullSync: rssAfterFull, end: peakRssMiB() },
  };

  const f = report.full;
  const raw = report.rawEmbedding;
  console.log('');
  console.log(`messages                 ${messages}`);
  console.log(`documents / chunks       ${f.indexed} / ${f.chunks}  (${f.errors} item errors)`);
  console.log(`full sync                ${f.seconds} s  ${f.docsPerSecond} docs/s  ${f.chunksPerSecond} chunks/s`);
  console.log(`  of which embedding     ${f.embedSeconds} s (${Math.round(f.embedShare * 100)}%), chunking ${f.chunkSeconds} s, in ${f.embedCalls} embed calls`);
  console.log(`  CPU                    ${f.cpuSeconds} s this process, ${f.otherCpuSeconds} s rest of host (Postgres, Temporal, other load)`);
  console.log(`  Slack API calls        ${Object.entries(f.slackCalls).map(([m, n]) => `${m} ${n}`).join(', ')}`);
  console.log(`raw embedding            ${raw.pipelineBatching.textsPerSecond} texts/s = chunks/s, ${raw.pipelineBatching.tokensPerSecond} tokens/s (same ${texts.length} texts, pipeline's call grouping)`);
  console.log(`                         ${raw.oneCall.textsPerSecond} texts/s = chunks/s, ${raw.oneCall.tokensPerSecond} tokens/s (same texts, one call sorted by length)`);
  console.log(`  text length            chars mean ${report.texts.meanChars}, p50 ${report.texts.p50Chars}, p95 ${report.texts.p95Chars}; tokens p50 ${report.texts.p50Tokens}, p95 ${report.texts.p95Tokens}, max ${report.texts.maxTokens}`);
  console.log(`pipeline / raw chunks/s  ${report.pipelineToRawChunks}`);
  console.log(`peak RSS (this process)  ${report.peakRssMiB.afterFullSync} MiB after full sync (${rssAfterSetup} MiB after setup); excludes Postgres and Temporal server; JS heap peak ${f.peakHeapMiB} MiB`);
  console.log(`incremental, no change   ${report.noChange.seconds} s  (${report.noChange.ratioToFull} of full; ${report.noChange.indexed} re-indexed; ${Object.values(noChangeCalls).reduce((a, b) => a + b, 0)} Slack calls)`);
  console.log(`incremental, ${changePercent}% new      ${report.incremental.seconds} s  (${report.incremental.ratioToFull} of full; ${change.posted} messages, ${change.replies} of them replies; ${report.incremental.indexed} docs re-indexed, ${change.expectedDocs} expected; ${report.incremental.chunks} chunks; embedding ${report.incremental.embedSeconds} s; ${Object.values(incrementalCalls).reduce((a, b) => a + b, 0)} Slack calls)`);
  console.log(`load average             ${report.loadAverage.start.join(' ')} at start, ${report.loadAverage.end.join(' ')} at end (${report.cpus} cores)`);
  console.log(JSON.stringify(report));
} finally {
  await harness.close();
}
