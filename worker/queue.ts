import { Queue, QueueEvents, type ConnectionOptions } from 'bullmq';
import { AstryError, type AstryErrorCode } from '../core/errors.ts';
import type { AskRequest, AskResult } from './ask.ts';

/** The BullMQ queue questions wait in. */
export const ASK_QUEUE = 'astry-ask';

/** Job payload: an authenticated asker and the question (no bearer token ever enters Redis). */
export type AskJobData = Required<Pick<AskRequest, 'requestId'>> & AskRequest;

/** Expected failures complete the job with a code, so nothing is retried and the edge can map it. */
export type AskJobResult = { ok: true; result: AskResult } | { ok: false; code: AstryErrorCode; message: string };

/** Redis connection options from a redis:// URL. */
export function redisConnection(url: string): ConnectionOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    maxRetriesPerRequest: null,
  };
}

/** A wait for one job's outcome. */
interface PendingWait {
  resolve(outcome: AskJobResult): void;
  reject(err: Error): void;
}

/**
 * Producer side of the ask queue: enqueue a question and wait for its answer. One 'completed' and one
 * 'failed' listener serve every wait, by job id: BullMQ's job.waitUntilFinished adds listeners per
 * wait (one on the Queue's 'closing' among them), so a busy API or bot process crossed Node's
 * MaxListeners limit.
 */
export class AskQueue {
  readonly #queue: Queue<AskJobData, AskJobResult>;
  readonly #events: QueueEvents<AskJobResult>;
  /** Waits by job id (= request id); a request id asked twice has two. */
  readonly #pending = new Map<string, Set<PendingWait>>();

  constructor(connection: ConnectionOptions, name = ASK_QUEUE) {
    this.#queue = new Queue<AskJobData, AskJobResult>(name, { connection });
    this.#events = new QueueEvents<AskJobResult>(name, { connection });
    this.#events.on('completed', ({ jobId, returnvalue }) => this.#settle(jobId, (wait) => wait.resolve(returnvalue)));
    this.#events.on('failed', ({ jobId, failedReason }) => this.#settle(jobId, (wait) => wait.reject(new Error(failedReason))));
  }

  /** Settles every wait for `jobId`, or only `only`. */
  #settle(jobId: string, how: (wait: PendingWait) => void, only?: PendingWait): void {
    const waits = this.#pending.get(jobId);
    if (waits === undefined) return;
    for (const wait of only === undefined ? [...waits] : [only]) {
      if (!waits.delete(wait)) continue;
      how(wait);
    }
    if (waits.size === 0) this.#pending.delete(jobId);
  }

  /** Enqueues and waits up to `timeoutMs`; expected failures come back as AstryErrors with their code. */
  async ask(data: AskJobData, timeoutMs: number): Promise<AskResult> {
    await this.#events.waitUntilReady();
    const jobId = data.requestId;
    let wait: PendingWait | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finished = new Promise<AskJobResult>((resolve, reject) => {
      wait = { resolve, reject };
      const waits = this.#pending.get(jobId) ?? new Set();
      this.#pending.set(jobId, waits.add(wait));
      // Our own timer rather than waitUntilFinished's ttl: its timeout is only recognisable by message text.
      timer = setTimeout(() => this.#settle(jobId, (w) => w.reject(new AstryError('TIMEOUT', 'the question took too long to answer')), wait), timeoutMs);
    });
    // Settled (timeout, close) possibly before it is awaited below.
    finished.catch(() => undefined);
    let outcome: AskJobResult;
    try {
      await this.#queue.add('ask', data, {
        jobId,
        // Answering spends money: a failed job is not retried. A stalled job (crashed worker) is
        // re-run once by BullMQ's stalled-job check, which is safe: the sandbox is per attempt and
        // usage is recorded once per request id.
        attempts: 1,
        removeOnComplete: { age: 600 },
        removeOnFail: { age: 3600 },
      });
      // The events listener was ready before the job was added, so no later outcome is missed; one
      // already there (a request id asked again) is read from Redis.
      await this.#alreadyFinished(jobId);
      outcome = await finished;
    } finally {
      clearTimeout(timer);
      if (wait) this.#settle(jobId, () => undefined, wait);
    }
    if (!outcome.ok) throw new AstryError(outcome.code, outcome.message);
    return outcome.result;
  }

  /** Settles the waits for `jobId` from Redis if the job has finished already. */
  async #alreadyFinished(jobId: string): Promise<void> {
    const state = await this.#queue.getJobState(jobId);
    if (state !== 'completed' && state !== 'failed') return;
    const job = await this.#queue.getJob(jobId);
    if (job === undefined) return;
    if (state === 'completed') this.#settle(jobId, (wait) => wait.resolve(job.returnvalue));
    else this.#settle(jobId, (wait) => wait.reject(new Error(job.failedReason)));
  }

  /** Closes the connections; waits still pending are rejected. */
  async close(): Promise<void> {
    for (const jobId of [...this.#pending.keys()]) this.#settle(jobId, (wait) => wait.reject(new Error('the ask queue was closed')));
    await this.#events.close();
    await this.#queue.close();
  }
}
