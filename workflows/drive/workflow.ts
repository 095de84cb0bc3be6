// Deterministic workflow code only: activities are imported as types and called through proxies.
import { defineQuery, proxyActivities, setHandler, workflowInfo, type RetryPolicy } from '@temporalio/workflow';
import type { SyncActivities } from '../activities/index.ts';
import type { SyncInput } from '../types.ts';
import type { DriveActivities } from './activities.ts';
import type { DriveSyncProgress, DriveSyncSummary } from './types.ts';

/** Query the CLI polls to draw its progress bar. */
export const driveProgressQuery = defineQuery<DriveSyncProgress>('progress');

const retry = (maximumAttempts = 8): RetryPolicy => ({ initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts });

type Activities = DriveActivities & Pick<SyncActivities, 'beginRun' | 'finishRun'>;

/**
 * One incremental sync of a Drive connection: principals first (group and drive membership, so
 * revocations land before new content), then each change log in turn, My Drive first.
 */
export async function syncDriveWorkflow(input: SyncInput): Promise<DriveSyncSummary> {
  const heartbeatTimeout = (input.heartbeatTimeoutSeconds ?? 60) * 1000;
  const short = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: retry() });
  const long = proxyActivities<Activities>({ startToCloseTimeout: '4 hours', heartbeatTimeout, retry: retry(input.activityAttempts) });

  const progress: DriveSyncProgress = { phase: 'starting', scopesDone: 0, scopesTotal: 0, currentScope: null };
  setHandler(driveProgressQuery, () => progress);

  const runId = await short.beginRun(input.connectionId, workflowInfo().workflowId);
  try {
    progress.phase = 'principals';
    const plan = await long.syncDrivePrincipals({ connectionId: input.connectionId, runId });
    if (!plan.active) {
      progress.phase = 'skipped';
      await short.finishRun(runId, 'succeeded');
      return { runId, status: 'skipped', scopes: 0 };
    }
    progress.phase = 'scopes';
    progress.scopesTotal = plan.scopes.length;
    for (const scope of plan.scopes) {
      progress.currentScope = scope;
      await long.syncDriveScope({ connectionId: input.connectionId, runId, scope, acl: plan.acl });
      progress.scopesDone++;
    }
    progress.currentScope = null;
    await short.finishRun(runId, 'succeeded');
    progress.phase = 'done';
    return { runId, status: 'succeeded', scopes: plan.scopes.length };
  } catch (err) {
    await short.finishRun(runId, 'failed', err instanceof Error ? err.message : String(err));
    throw err;
  }
}
