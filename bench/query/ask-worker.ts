// The query worker of the throughput run, in its own process as in production (`astry query-worker`),
// with the bench's question embedder. Prints "ready" once it takes jobs; SIGTERM closes it cleanly.
import { z } from 'zod';
import { env } from '../../core/env.ts';
import { createPool } from '../../db/pool.ts';
import { startQueryWorker } from '../../worker/query-worker.ts';
import { redisConnection } from '../../worker/queue.ts';
import { benchAskDeps } from './deps.ts';

const Config = z.object({
  BENCH_DATABASE_URL: z.string().url(),
  BENCH_STATE_DIR: z.string().min(1),
  BENCH_SEED: z.coerce.number().int(),
  BENCH_QUEUE: z.string().min(1),
  BENCH_CONCURRENCY: z.coerce.number().int().min(1).max(64),
  /** SearchOptions as JSON; empty for the production defaults. */
  BENCH_SEARCH: z.string().default('{}'),
});
const SearchSchema = z.object({
  k: z.number().int().positive().optional(),
  exactMaxVisible: z.number().int().nonnegative().optional(),
  efSearch: z.number().int().positive().optional(),
  maxScanTuples: z.number().int().positive().optional(),
});

const config = Config.parse(process.env);
const search = SearchSchema.parse(JSON.parse(config.BENCH_SEARCH));
const pool = createPool(config.BENCH_DATABASE_URL);
const deps = await benchAskDeps(pool, config.BENCH_STATE_DIR, config.BENCH_SEED, `worker-${process.pid}`, search);
const worker = await startQueryWorker(deps, { connection: redisConnection(env().REDIS_URL), queueName: config.BENCH_QUEUE, concurrency: config.BENCH_CONCURRENCY });
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void (async () => {
    await worker.close();
    await deps.audit.close();
    await pool.end();
    process.exit(0);
  })();
});
