import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import { isAstryError } from '../core/errors.ts';
import { chooseConfinement, type ConfinementPreference } from '../sandbox/selftest.ts';
import { answerQuestion, type AskDeps } from './ask.ts';
import { ASK_QUEUE, type AskJobData, type AskJobResult } from './queue.ts';

/** Options of the query worker; units and defaults on each field. */
export interface QueryWorkerOptions {
  connection: ConnectionOptions;
  /** Questions answered at once (default 2: one per core). */
  concurrency?: number;
  /** Lock held per job, renewed while it runs, in ms (default 30000); a crashed worker's job stalls after it. */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for, in ms (default 15000). */
  stalledIntervalMs?: number;
  queueName?: string;
  /** Which confinement to use (default 'auto': bubblewrap, else Landlock); see ASTRY_CONFINEMENT. */
  confinement?: ConfinementPreference;
}

/**
 * Starts the BullMQ worker that answers questions. Refuses to start unless a confinement passes its
 * self-test (never answers unconfined); every question's tool runner then uses that confinement. `deps.sandboxRoot` comes from claimSandboxRoot, which sweeps
 * what crashed workers left behind.
 */
export async function startQueryWorker(deps: AskDeps, options: QueryWorkerOptions): Promise<Worker<AskJobData, AskJobResult>> {
  const { confinement } = await chooseConfinement(options.confinement ?? 'auto');
  const confined: AskDeps = { ...deps, confinement };
  const worker = new Worker<AskJobData, AskJobResult>(
    options.queueName ?? ASK_QUEUE,
    async (job: Job<AskJobData, AskJobResult>) => {
      try {
        return { ok: true, result: await answerQuestion(confined, job.data) };
      } catch (err) {
        if (isAstryError(err)) return { ok: false, code: err.code, message: err.message };
        throw err;
      }
    },
    {
      connection: options.connection,
      concurrency: options.concurrency ?? 2,
      lockDuration: options.lockDurationMs ?? 30_000,
      stalledInterval: options.stalledIntervalMs ?? 15_000,
      maxStalledCount: 1,
    },
  );
  await worker.waitUntilReady();
  return worker;
}
