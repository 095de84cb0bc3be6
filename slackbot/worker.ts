import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import { handlePrivateAnswer, handleQuestion, type Outcome, type SlackBotDeps } from './handler.ts';
import { SLACK_QUEUE, SlackJobSchema } from './jobs.ts';

/** Options of the Slack bot worker; units and defaults on each field. */
export interface SlackBotWorkerOptions {
  connection: ConnectionOptions;
  /** Slack jobs handled at once (default 8): each mostly waits on the query worker and Slack. */
  concurrency?: number;
  queueName?: string;
  /** Called after each job with its outcome and the ms from the endpoint's acceptance to the end. */
  onOutcome?: (outcome: Outcome, ms: number) => void;
}

/**
 * Starts the BullMQ worker that turns accepted Slack events into answers. It needs no sandbox: the
 * question itself is answered by the query worker (worker/query-worker.ts), through its queue.
 */
export async function startSlackBotWorker(deps: SlackBotDeps, options: SlackBotWorkerOptions): Promise<Worker> {
  const worker = new Worker(
    options.queueName ?? SLACK_QUEUE,
    async (job: Job) => {
      // The payload crossed Redis: validated, never cast.
      const data = SlackJobSchema.parse(job.data);
      const outcome = data.kind === 'question' ? await handleQuestion(deps, data) : await handlePrivateAnswer(deps, data);
      options.onOutcome?.(outcome, Date.now() - data.receivedAt);
      return outcome;
    },
    { connection: options.connection, concurrency: options.concurrency ?? 8, maxStalledCount: 0 },
  );
  await worker.waitUntilReady();
  return worker;
}
