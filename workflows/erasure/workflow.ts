// Deterministic workflow code only: activities are imported as types and called through proxies.
import { ApplicationFailure, proxyActivities, type RetryPolicy } from '@temporalio/workflow';
import type { ErasureActivities } from './activities.ts';
import type { ErasureInput, ErasureResult } from './types.ts';

// Erasure is owed, not optional: keep retrying through outages (each activity is idempotent).
const retry: RetryPolicy = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 50 };

/** Rounds of purge + re-check before giving up (a sync racing the purge is refused by the rules, see docs/erasure.md). */
const MAX_ROUNDS = 5;

/**
 * Erases one subject: suppression rules first (nothing re-imports them meanwhile), footprint,
 * query history, documents (with chunks, vectors, blobs), a re-check that nothing is left, keys
 * shredded, the erasure's own audit entry plus a checkpoint covering it, and the signed manifest.
 */
export async function eraseSubjectWorkflow(input: ErasureInput): Promise<ErasureResult> {
  const short = proxyActivities<ErasureActivities>({ startToCloseTimeout: '2 minutes', retry });
  const long = proxyActivities<ErasureActivities>({
    startToCloseTimeout: '4 hours', heartbeatTimeout: (input.heartbeatTimeoutSeconds ?? 60) * 1000, retry,
  });

  const done = await short.beginErasure(input);
  if (done) return done;
  await short.suppressSubject(input);
  await short.measureFootprint(input);
  await long.purgeQueryHistory(input);
  for (let round = 1; ; round++) {
    await long.purgeDocuments(input);
    if ((await short.remainingDocuments(input)) === 0) break;
    if (round >= MAX_ROUNDS) throw ApplicationFailure.nonRetryable(`documents of the subject remain after ${round} rounds`);
  }
  await short.shredSubjectKeys(input);
  await short.recordInAudit(input);
  return short.sealBundle(input);
}
