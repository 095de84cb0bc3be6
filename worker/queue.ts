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

/** Producer side of the ask queue: enqueue a question and wait for its answer. */
export class AskQueue {
  readonly #queue: Queue<AskJobData, AskJobResult>;
  readonly #events: QueueEvents;

  constructor(connection: ConnectionOptions, name = ASK_QUEUE) {
    this.#queue = new Queue<AskJobData, AskJobResult>(name, { connection });
    this.#events = new QueueEvents(name, { connection });
  }

  /** Enqueues and waits up to `timeoutMs`; expected failures come back as AstryErrors with their code. */
  async ask(data: AskJobData, timeoutMs: number): Promise<AskResult> {
    await this.#events.waitUntilReady();
    const job = await this.#queue.add('ask', data, {
      jobId: data.requestId,
      // Answering spends money: a failed job is not retried. A stalled job (crashed worker) is
      // re-run once by BullMQ's stalled-job check, which is safe: the sandbox is per attempt and
      // usage is recorded once per request id.
      attempts: 1,
      removeOnComplete: { age: 600 },
      removeOnFail: { age: 3600 },
    });
    // Our own timer rather than waitUntilFinished's ttl: its timeout is only recognisable by message text.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AstryError('TIMEOUT', 'the question took too long to answer')), timeoutMs);
    });
    let outcome: AskJobResult;
    try {
      outcome = await Promise.race([job.waitUntilFinished(this.#events), timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (!outcome.ok) throw new AstryError(outcome.code, outcome.message);
    return outcome.result;
  }

  async close(): Promise<void> {
    await this.#events.close();
    await this.#queue.close();
  }
}
