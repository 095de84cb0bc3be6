// Sustained throughput of the query worker: a separate worker process (BullMQ, concurrency 2,
// extractive model, real sandbox and audit) drains a burst of questions enqueued at once.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { env } from '../../core/env.ts';
import { mulberry32 } from '../../fixtures/slack/prng.ts';
import type { SearchOptions } from '../../retrieval/search.ts';
import type { AskResult } from '../../worker/ask.ts';
import { AskQueue, redisConnection } from '../../worker/queue.ts';
import { questionFor, STEPS } from './asks.ts';
import type { TopicModel } from './company.ts';
import type { SeededCompany } from './seed.ts';
import { round1, summarize, type Summary } from './stats.ts';

const CLOCK_TICKS = 100;

export interface ThroughputReport {
  jobs: number;
  concurrency: number;
  failed: number;
  wallSeconds: number;
  questionsPerMinute: number;
  /** Time inside the worker per question (sum of the steps), under load. */
  serviceMs: Summary;
  /** Enqueue to answer, as the API waits for it (queueing included: all jobs were enqueued at once). */
  endToEndMs: Summary;
  /**
   * CPU seconds of the worker process itself, and of everything else on the host: the tool runners
   * (killed with their process group, they are reaped by init, so they never show in the worker's
   * child times), Postgres, Redis, this driver and any unrelated load.
   */
  cpuSeconds: { worker: number; restOfHost: number };
}

/** utime + stime of a process, in seconds. */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  // After the command name: state is field 3 of proc(5); utime and stime are fields 14 and 15.
  return ((fields[11] ?? 0) + (fields[12] ?? 0)) / CLOCK_TICKS;
}

function hostBusySeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return (fields.reduce((a, b) => a + b, 0) - idle) / CLOCK_TICKS;
}

export async function measureThroughput(opts: {
  appUrl: string; stateDir: string; seed: number; concurrency: number; jobs: number; search: SearchOptions;
  company: SeededCompany; model: TopicModel; log: (line: string) => void;
}): Promise<ThroughputReport> {
  const queueName = `astry-ask-bench-${randomBytes(4).toString('hex')}`;
  const child = spawn(process.execPath, [fileURLToPath(new URL('./ask-worker.ts', import.meta.url))], {
    env: {
      ...process.env, BENCH_DATABASE_URL: opts.appUrl, BENCH_STATE_DIR: opts.stateDir, BENCH_SEED: String(opts.seed),
      BENCH_QUEUE: queueName, BENCH_CONCURRENCY: String(opts.concurrency), BENCH_SEARCH: JSON.stringify(opts.search),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const queue = new AskQueue(redisConnection(env().REDIS_URL), queueName);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the worker process did not become ready in 60 s')), 60_000);
      child.stdout.on('data', (data: Buffer) => {
        if (data.toString('utf8').includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then((code) => reject(new Error(`the worker process exited with ${code}`)));
    });
    const pid = child.pid;
    if (pid === undefined) throw new Error('the worker process has no pid');
    const rng = mulberry32(opts.seed * 13 + 5);
    const job = (i: number) => {
      const index = i % opts.company.askers.length;
      const asker = opts.company.askers[index];
      if (!asker) throw new Error('no askers');
      return { requestId: randomUUID(), workspaceId: opts.company.workspaceId, principalId: asker.principalId, question: questionFor(opts.model, index, rng) };
    };
    // Warm-up: connections, JIT and the page cache of the worker, not counted.
    await Promise.all(Array.from({ length: 2 * opts.concurrency }, (_, i) => queue.ask(job(i), 120_000)));
    const cpuBefore = processCpuSeconds(pid);
    const hostBefore = hostBusySeconds();
    const start = performance.now();
    const outcomes = await Promise.allSettled(
      Array.from({ length: opts.jobs }, async (_, i) => {
        const enqueued = performance.now();
        const result: AskResult = await queue.ask(job(i), 30 * 60_000);
        return { result, ms: performance.now() - enqueued };
      }),
    );
    const wallMs = performance.now() - start;
    const worker = processCpuSeconds(pid) - cpuBefore;
    const restOfHost = Math.max(0, hostBusySeconds() - hostBefore - worker);
    const done = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    for (const o of outcomes) if (o.status === 'rejected') opts.log(`  failed: ${String(o.reason)}`);
    return {
      jobs: opts.jobs,
      concurrency: opts.concurrency,
      failed: opts.jobs - done.length,
      wallSeconds: round1(wallMs / 1000),
      questionsPerMinute: round1((done.length / wallMs) * 60_000),
      serviceMs: summarize(done.map((d) => STEPS.reduce((sum, s) => sum + d.result.timings[s], 0))),
      endToEndMs: summarize(done.map((d) => d.ms)),
      cpuSeconds: { worker: round1(worker), restOfHost: round1(restOfHost) },
    };
  } finally {
    await queue.close();
    child.kill('SIGTERM');
    await exited;
  }
}
