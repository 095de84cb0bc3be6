// Recall@k of searchAuthorized against an exact search over the same authorized rows, in the same
// run: the exact answer is searchAuthorized itself forced onto its exact path (GIN bitmap scan of the
// visible rows, distance sort, no HNSW index scan), so both sides apply the identical ACL predicate.
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { mulberry32 } from '../../fixtures/slack/prng.ts';
import { searchAuthorized, type SearchOptions, type SearchPath } from '../../retrieval/search.ts';
import { ASKERS, TOPICS, type TopicModel } from './company.ts';
import type { SeededCompany } from './seed.ts';
import { round3, summarize, type Summary } from './stats.ts';

/** A visible-set size no company reaches: forces the exact path. */
const ALWAYS_EXACT = 1_000_000_000;
const WARMUP_QUERIES = 5;

export interface RecallConfig {
  name: string;
  options: SearchOptions;
}

export interface RecallRow {
  asker: string;
  visibleChunks: number;
  config: string;
  options: SearchOptions;
  paths: Partial<Record<SearchPath, number>>;
  /**
   * Mean recall@k over all queries; `home` over questions about the asker's own topics, `other` over
   * any topic; `belowOne` queries missed at least one neighbour, `misses` found fewer than half.
   */
  recall: { mean: number; min: number; home: number; other: number; belowOne: number; misses: number };
  latencyMs: Summary;
}

export interface RecallReport {
  k: number;
  queriesPerAsker: number;
  rows: RecallRow[];
  /** Cosine similarity of the exact 1st and 10th neighbours, averaged: how tight the synthetic clusters are. */
  neighbourCosine: { top1: number; top10: number };
}

interface Query {
  embedding: number[];
  home: boolean;
}

/** The configurations measured for an asker: the defaults, forced HNSW, and an ef_search sweep for large visible sets. */
export function configsFor(visibleChunks: number, defaults: SearchOptions): RecallConfig[] {
  const configs: RecallConfig[] = [
    { name: 'default', options: { ...defaults } },
    { name: 'forced hnsw', options: { ...defaults, exactMaxVisible: 0 } },
  ];
  if (visibleChunks > 50_000) {
    for (const ef of [20, 40, 100, 200, 400, 800]) configs.push({ name: `hnsw ef=${ef}`, options: { ...defaults, exactMaxVisible: 0, efSearch: ef } });
  }
  return configs;
}

async function run(pool: pg.Pool, workspaceId: string, principalIds: readonly number[], q: Query, options: SearchOptions) {
  const start = performance.now();
  const result = await searchAuthorized(pool, { workspaceId, principalIds, embedding: q.embedding }, options);
  return { result, ms: performance.now() - start };
}

/** Half the queries are about topics the asker's documents cover, half about any topic (mostly invisible to small askers). */
function queriesFor(model: TopicModel, askerIndex: number, n: number, seed: number): Query[] {
  const asker = ASKERS[askerIndex];
  if (!asker) throw new Error(`no asker ${askerIndex}`);
  const home = model.homeTopics(asker);
  const rng = mulberry32(seed * 31 + askerIndex);
  return Array.from({ length: n }, (_, i) => {
    const isHome = i % 2 === 0;
    const topic = isHome ? rng.pick(home) : rng.int(0, TOPICS - 1);
    return { embedding: Array.from(model.queryVector(topic, rng)), home: isHome };
  });
}

export async function measureRecall(
  pool: pg.Pool,
  company: SeededCompany,
  model: TopicModel,
  opts: { queries: number; seed: number; k: number; defaults: SearchOptions; log: (line: string) => void },
): Promise<RecallReport> {
  const rows: RecallRow[] = [];
  let top1 = 0;
  let top10 = 0;
  let counted = 0;
  for (const [index, asker] of company.askers.entries()) {
    const queries = queriesFor(model, index, opts.queries, opts.seed);
    const search = (q: Query, options: SearchOptions) => run(pool, company.workspaceId, asker.principalSet, q, { ...options, k: opts.k });
    for (const q of queries.slice(0, WARMUP_QUERIES)) await search(q, { exactMaxVisible: ALWAYS_EXACT });
    const truth: Set<string>[] = [];
    const exactMs: number[] = [];
    for (const q of queries) {
      const { result, ms } = await search(q, { ...opts.defaults, exactMaxVisible: ALWAYS_EXACT });
      if (result.path !== 'exact') throw new Error('the exact reference did not take the exact path');
      truth.push(new Set(result.hits.map((h) => h.chunkId)));
      exactMs.push(ms);
      const first = result.hits[0];
      const tenth = result.hits[opts.k - 1];
      if (first && tenth) {
        top1 += 1 - first.distance;
        top10 += 1 - tenth.distance;
        counted++;
      }
    }
    rows.push({
      asker: asker.label, visibleChunks: asker.visibleChunks, config: 'exact (reference)', options: { exactMaxVisible: ALWAYS_EXACT },
      paths: { exact: queries.length }, recall: { mean: 1, min: 1, home: 1, other: 1, belowOne: 0, misses: 0 }, latencyMs: summarize(exactMs),
    });
    for (const config of configsFor(asker.visibleChunks, opts.defaults)) {
      for (const q of queries.slice(0, WARMUP_QUERIES)) await search(q, config.options);
      const recalls: number[] = [];
      const ms: number[] = [];
      const paths: Partial<Record<SearchPath, number>> = {};
      for (const [i, q] of queries.entries()) {
        const { result, ms: took } = await search(q, config.options);
        const expected = truth[i] ?? new Set<string>();
        const found = result.hits.filter((h) => expected.has(h.chunkId)).length;
        recalls.push(expected.size === 0 ? 1 : found / expected.size);
        ms.push(took);
        paths[result.path] = (paths[result.path] ?? 0) + 1;
      }
      const mean = (xs: number[]) => round3(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length));
      const row: RecallRow = {
        asker: asker.label, visibleChunks: asker.visibleChunks, config: config.name, options: config.options, paths,
        recall: {
          mean: mean(recalls), min: round3(Math.min(...recalls)),
          home: mean(recalls.filter((_, i) => queries[i]?.home)), other: mean(recalls.filter((_, i) => !queries[i]?.home)),
          belowOne: recalls.filter((r) => r < 1).length, misses: recalls.filter((r) => r < 0.5).length,
        },
        latencyMs: summarize(ms),
      };
      rows.push(row);
      opts.log(`  ${asker.label} ${config.name}: recall ${row.recall.mean} (min ${row.recall.min}), ${row.latencyMs.p50} / ${row.latencyMs.p95} ms`);
    }
  }
  return { k: opts.k, queriesPerAsker: opts.queries, rows, neighbourCosine: { top1: round3(top1 / Math.max(1, counted)), top10: round3(top10 / Math.max(1, counted)) } };
}
