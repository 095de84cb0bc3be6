/**
 * The ask queue is a cache too: BullMQ keeps finished jobs (question, answer, citations) in Redis
 * for a while (worker/queue.ts: 10 minutes after completion, an hour after failure). Erasure removes
 * the subject's own jobs and anyone's job whose answer was drawn from the subject's documents.
 * Active jobs are locked by their worker and cannot be removed; they expire like any other.
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';

const JobDataSchema = z.object({ principalId: z.number().optional(), requestId: z.string().optional() }).loose();
const JobResultSchema = z.object({ result: z.object({ materialized: z.array(z.string()).default([]) }).loose().optional() }).loose();

/** Which jobs to remove. */
export interface AskJobMatch {
  principalId: number | null;
  /** Anyone's job that materialized one of these documents. */
  documentIds: ReadonlySet<string>;
  /** Anyone's job with one of these request ids (answers derived from the subject's documents). */
  requestIds: ReadonlySet<string>;
}

/** Removes matching jobs from the given queues; returns how many were removed. */
export async function purgeAskJobs(connection: ConnectionOptions, queueNames: readonly string[], match: AskJobMatch): Promise<number> {
  let removed = 0;
  for (const name of queueNames) {
    const queue = new Queue(name, { connection });
    try {
      const jobs = await queue.getJobs(['completed', 'failed', 'wait', 'delayed', 'prioritized']);
      for (const job of jobs) {
        const data = JobDataSchema.safeParse(job.data);
        const result = JobResultSchema.safeParse(job.returnvalue);
        const materialized = result.success ? (result.data.result?.materialized ?? []) : [];
        const hit =
          (data.success && match.principalId !== null && data.data.principalId === match.principalId) ||
          (data.success && data.data.requestId !== undefined && match.requestIds.has(data.data.requestId)) ||
          materialized.some((id) => match.documentIds.has(id));
        if (hit && job.id !== undefined && (await queue.remove(job.id)) === 1) removed++;
      }
    } finally {
      await queue.close();
    }
  }
  return removed;
}
