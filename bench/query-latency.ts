// Query benchmark: latency of each step of a question, p50/p95, for askers who see ~0.5%, ~5% and
// ~50% of a seeded company of 200k chunks; recall@10 of authorized retrieval against an exact search
// over the same authorized rows; the edge's token verification; and the sustained throughput of the
// query worker (BullMQ, concurrency 2, extractive model). Results: docs/query-benchmarks.md.
// Usage: node bench/query-latency.ts [--docs 50000] [--seed 7] [--queries 100] [--asks 50] [--jobs 200]
//        [--concurrency 2] [--ef N] [--exact-max-visible N] [--max-scan-tuples N]
//        [--phases recall,identity,asks,throughput] [--embedding-storage schema|main] [--ef-construction N]
//        [--keep-db] [--reuse-db astry_bench_…]
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { SearchOptions } from '../retrieval/search.ts';
import { LocalKeyFileProvider } from '../vault/key-provider.ts';
import { measureAsks, measureIdentity, STEPS, type AskRow, type IdentityReport } from './query/asks.ts';
import { TopicModel } from './query/company.ts';
import { openBenchDatabase } from './query/database.ts';
import { benchAskDeps, kekPath } from './query/deps.ts';
import { measureRecall, type RecallReport } from './query/recall.ts';
import { describeCompany, seedCompany, verifySealing, type SeedReport } from './query/seed.ts';
import { cell, round1, table } from './query/stats.ts';
import { measureThroughput, type ThroughputReport } from './query/throughput.ts';

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '50000' },
    seed: { type: 'string', default: '7' },
    queries: { type: 'string', default: '100' },
    asks: { type: 'string', default: '50' },
    jobs: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '2' },
    'identity-rounds': { type: 'string', default: '300' },
    ef: { type: 'string' },
    'exact-max-visible': { type: 'string' },
    'max-scan-tuples': { type: 'string' },
    phases: { type: 'string', default: 'recall,identity,asks,throughput' },
    'embedding-storage': { type: 'string', default: 'schema' },
    'ef-construction': { type: 'string' },
    'keep-db': { type: 'boolean', default: false },
    'reuse-db': { type: 'string' },
  },
});

function count(name: string, raw: string | undefined, min = 1): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new RangeError(`--${name} must be an integer >= ${min}, got ${raw}`);
  return n;
}
const need = (name: string, raw: string): number => count(name, raw) ?? 0;

const docs = need('docs', values.docs);
const seed = need('seed', values.seed);
const PHASES = ['recall', 'identity', 'asks', 'throughput'] as const;
const phases = new Set(values.phases.split(',').map((p) => p.trim()));
for (const p of phases) if (!PHASES.some((known) => known === p)) throw new RangeError(`unknown phase ${p}; known: ${PHASES.join(', ')}`);
/** The SearchOptions under test: production defaults unless overridden (applied to every phase). */
const search: SearchOptions = {};
const ef = count('ef', values.ef);
const exactMaxVisible = count('exact-max-visible', values['exact-max-visible'], 0);
const maxScanTuples = count('max-scan-tuples', values['max-scan-tuples']);
if (ef !== undefined) search.efSearch = ef;
if (exactMaxVisible !== undefined) search.exactMaxVisible = exactMaxVisible;
if (maxScanTuples !== undefined) search.maxScanTuples = maxScanTuples;

const embeddingStorage = z.enum(['schema', 'main']).parse(values['embedding-storage']);
const efConstruction = count('ef-construction', values['ef-construction'], 4);
const log = (line: string) => console.log(line);
/** 1-minute load average at the start and end of each phase: the host may be shared (CI, other runs). */
const load: Record<string, { start: number; end: number }> = {};
async function phase<T>(name: string, work: () => Promise<T>): Promise<T> {
  const start = round1(loadavg()[0] ?? 0);
  try {
    return await work();
  } finally {
    load[name] = { start, end: round1(loadavg()[0] ?? 0) };
  }
}
const MetaSchema = z.object({ seed: z.number().int(), docs: z.number().int(), embeddingStorage: z.enum(['schema', 'main']), efConstruction: z.number().int().nullable().default(null) });

const db = await openBenchDatabase(values['reuse-db']);
const stateDir = join(tmpdir(), 'astry-bench', db.name);
await mkdir(stateDir, { recursive: true, mode: 0o700 });
const model = new TopicModel(seed);
// A database this run created is dropped at the end, even after a failure, unless --keep-db.
const dropAtEnd = values['reuse-db'] === undefined && !values['keep-db'];
try {
  const keys = await LocalKeyFileProvider.open(kekPath(stateDir));
  let seeding: SeedReport | undefined;
  if (values['reuse-db'] === undefined) {
    log(`seeding ${docs} documents (${docs * 4} chunks) into ${db.name} …`);
    seeding = await phase('seeding', () => seedCompany(db, keys, model, { documents: docs, embeddingStorage, efConstruction, log }));
    await writeFile(join(stateDir, 'meta.json'), JSON.stringify({ seed, docs, embeddingStorage, efConstruction: efConstruction ?? null, seeding }));
  } else {
    const meta = MetaSchema.parse(JSON.parse(await readFile(join(stateDir, 'meta.json'), 'utf8')));
    if (meta.seed !== seed) throw new RangeError(`${db.name} was seeded with --seed ${meta.seed}`);
    if (meta.embeddingStorage !== embeddingStorage) throw new RangeError(`${db.name} was seeded with --embedding-storage ${meta.embeddingStorage}`);
    log(`reusing ${db.name} (${meta.docs} documents, seed ${meta.seed}, embedding storage ${meta.embeddingStorage}, ef_construction ${meta.efConstruction ?? 'schema'})`);
  }
  const company = await describeCompany(db.app);
  const verified = await verifySealing(db.app, keys, 50);
  log(`company: ${company.documents} documents, ${company.chunks} chunks; ${verified} random documents decrypted through readDocument`);
  for (const a of company.askers) log(`  asker ${a.label} (${a.email}): ${a.visibleChunks} visible chunks = ${((100 * a.visibleChunks) / company.chunks).toFixed(2)}%, ${a.principalSet.length} principals`);

  let recall: RecallReport | undefined;
  let identity: IdentityReport | undefined;
  let asks: AskRow[] | undefined;
  let throughput: ThroughputReport | undefined;
  const queries = need('queries', values.queries);
  if (phases.has('recall')) {
    log(`recall@10: ${queries} queries per asker, each configuration against the exact search …`);
    recall = await phase('recall', () => measureRecall(db.app, company, model, { queries, seed, k: 10, defaults: search, log }));
  }
  if (phases.has('identity')) {
    log('identity at the edge: token verification + user resolution …');
    identity = await phase('identity', () => measureIdentity(db.app, company.workspaceId, need('identity-rounds', values['identity-rounds'])));
  }
  if (phases.has('asks')) {
    log(`answerQuestion, one at a time: ${values.asks} questions per asker …`);
    const deps = await benchAskDeps(db.app, stateDir, seed, 'driver', search);
    try {
      asks = await phase('asks', () => measureAsks(deps, company, model, { asks: need('asks', values.asks), seed, log }));
    } finally {
      await deps.audit.close();
    }
  }
  if (phases.has('throughput')) {
    const concurrency = need('concurrency', values.concurrency);
    log(`throughput: ${values.jobs} questions through a worker process, concurrency ${concurrency} …`);
    throughput = await phase('throughput', () => measureThroughput({ appUrl: db.appUrl, stateDir, seed, concurrency, jobs: need('jobs', values.jobs), search, company, model, log }));
  }

  console.log('');
  if (seeding) {
    console.log(`seeding: ${seeding.documents} documents / ${seeding.chunks} chunks in ${seeding.totalSeconds} s (load ${seeding.loadSeconds} s, GIN ${seeding.ginSeconds} s, HNSW ${seeding.hnswSeconds} s (ef_construction ${seeding.efConstruction}), VACUUM ANALYZE ${seeding.vacuumAnalyzeSeconds} s)`);
    console.log(`  chunks heap ${seeding.sizesMiB.chunksHeap} MiB (${seeding.heapBytesPerChunk} B/row, embedding storage: ${seeding.embeddingStorage}), TOAST ${seeding.sizesMiB.chunksToast} MiB, HNSW ${seeding.sizesMiB.hnswIndex} MiB, GIN ${seeding.sizesMiB.ginIndex} MiB, vault blobs ${seeding.sizesMiB.vaultBlobs} MiB`);
  }
  if (recall) {
    console.log(`\nrecall@${recall.k} vs exact search over the same authorized rows (${recall.queriesPerAsker} queries per asker; exact neighbours at cosine ${recall.neighbourCosine.top1} (1st) / ${recall.neighbourCosine.top10} (10th))`);
    console.log(table(
      ['asker', 'visible', 'config', 'paths', 'recall mean', 'min', 'own topics / any topic', 'queries < 1', '< 0.5', 'ms p50 / p95'],
      recall.rows.map((r) => [
        r.asker, String(r.visibleChunks), r.config, Object.entries(r.paths).map(([p, n]) => `${p} ${n}`).join(', '),
        String(r.recall.mean), String(r.recall.min), `${r.recall.home} / ${r.recall.other}`, String(r.recall.belowOne), String(r.recall.misses), cell(r.latencyMs),
      ]),
    ));
  }
  if (asks) {
    console.log('\nanswerQuestion latency by step, ms p50 / p95 (one question at a time)');
    console.log(table(
      ['asker', 'visible', 'path', ...STEPS, 'total', 'docs', 'cited'],
      asks.map((r) => [
        r.asker, String(r.visibleChunks), Object.entries(r.paths).map(([p, n]) => `${p} ${n}`).join(', '),
        ...STEPS.map((s) => cell(r.steps[s])), cell(r.totalMs), String(r.meanMaterialized), `${r.answeredWithCitations}/${r.asks}`,
      ]),
    ));
  }
  if (identity) {
    console.log(`\nedge identity, ms p50 / p95: verify RS256 ${cell(identity.verifyRs256Ms)}, ES256 ${cell(identity.verifyEs256Ms)}, resolveUser ${cell(identity.resolveUserMs)}, verify + resolve ${cell(identity.edgeTotalMs)}; first verify (JWKS fetch) ${identity.coldVerifyMs}`);
  }
  if (throughput) {
    console.log(`\nthroughput: ${throughput.questionsPerMinute} questions/min (${throughput.jobs - throughput.failed}/${throughput.jobs} in ${throughput.wallSeconds} s, concurrency ${throughput.concurrency}, ${cpus().length} cores); in-worker time ${cell(throughput.serviceMs)} ms; CPU ${throughput.cpuSeconds.worker} s worker process, ${throughput.cpuSeconds.restOfHost} s rest of host (tool runners, Postgres, Redis, driver, other load)`);
  }
  console.log(`load average (1 min) at start → end of each phase: ${Object.entries(load).map(([p, l]) => `${p} ${l.start} → ${l.end}`).join(', ')}; this run took ${round1(performance.now() / 1000)} s`);
  console.log(JSON.stringify({ bench: 'query-latency', docs, seed, search, embeddingStorage, database: db.name, cores: cpus().length, loadAverage: load, seeding, company: { ...company, askers: company.askers.map(({ principalSet: _, ...a }) => a) }, recall, identity, asks, throughput }));
  if (!dropAtEnd) console.log(`kept ${db.name}; rerun with --reuse-db ${db.name} --seed ${seed}`);
} finally {
  if (dropAtEnd) {
    await db.drop();
    await rm(stateDir, { recursive: true, force: true });
  } else {
    await db.close();
  }
}
