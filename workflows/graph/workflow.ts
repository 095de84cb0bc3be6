// Deterministic workflow code only: activities are imported as types and called through proxies.
import { defineQuery, proxyActivities, setHandler, workflowInfo, type RetryPolicy } from '@temporalio/workflow';
import type { SyncActivities } from '../activities/index.ts';
import type { GraphActivities } from './activities.ts';
import type { SyncInput, SyncProgress, SyncSummary } from '../types.ts';

/** Same query name and shape as the Slack workflow's, so `astry sync` draws one progress bar for both (drives as "channels"). */
const progressQuery = defineQuery<SyncProgress>('progress');

const retry = (maximumAttempts = 8): RetryPolicy => ({ initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts });

/**
 * One incremental sync of a Microsoft 365 connection: principals first (users, groups, site
 * groups: revocations land before new content), then each document library from its delta cursor.
 */
export async function syncGraphWorkflow(input: SyncInput): Promise<SyncSummary> {
  const heartbeatTimeout = (input.heartbeatTimeoutSeconds ?? 60) * 1000;
  const short = proxyActivities<Pick<SyncActivities, 'beginRun' | 'finishRun'>>({ startToCloseTimeout: '1 minute', retry: retry() });
  const long = proxyActivities<GraphActivities>({ startToCloseTimeout: '4 hours', heartbeatTimeout, retry: retry(input.activityAttempts) });

  const progress: SyncProgress = { phase: 'starting', channelsDone: 0, channelsTotal: 0, currentChannel: null };
  setHandler(progressQuery, () => progress);

  const runId = await short.beginRun(input.connectionId, workflowInfo().workflowId);
  try {
    progress.phase = 'principals';
    const plan = await long.syncGraphPrincipals({ connectionId: input.connectionId, runId });
    if (!plan.active) {
      progress.phase = 'skipped';
      await short.finishRun(runId, 'succeeded');
      return { runId, status: 'skipped', channels: 0 };
    }
    progress.phase = 'channels';
    progress.channelsTotal = plan.drives.length;
    for (const drive of plan.drives) {
      progress.currentChannel = drive.name;
      await long.syncGraphDrive({ connectionId: input.connectionId, runId, drive });
      progress.channelsDone++;
    }
    progress.currentChannel = null;
    await short.finishRun(runId, 'succeeded');
    progress.phase = 'done';
    return { runId, status: 'succeeded', channels: plan.drives.length };
  } catch (err) {
    await short.finishRun(runId, 'failed', err instanceof Error ? err.message : String(err));
    throw err;
  }
}
