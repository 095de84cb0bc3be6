// Deterministic workflow code only: activities are imported as types and called through proxies.
import { defineQuery, proxyActivities, setHandler, workflowInfo, type RetryPolicy } from '@temporalio/workflow';
import type { SyncActivities } from './activities/index.ts';
import type { SyncInput, SyncProgress, SyncSummary } from './types.ts';

/** Query the CLI polls to draw its progress bar. */
export const progressQuery = defineQuery<SyncProgress>('progress');

const retry = (maximumAttempts = 8): RetryPolicy => ({ initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts });

/**
 * One incremental sync of a connection: principals and ACLs first (so revocations land before new
 * content), then each channel's changed documents, then files (whose ACL spans channels).
 */
export async function syncConnectionWorkflow(input: SyncInput): Promise<SyncSummary> {
  const heartbeatTimeout = (input.heartbeatTimeoutSeconds ?? 60) * 1000;
  const short = proxyActivities<SyncActivities>({ startToCloseTimeout: '1 minute', retry: retry() });
  const long = proxyActivities<SyncActivities>({ startToCloseTimeout: '4 hours', heartbeatTimeout, retry: retry(input.activityAttempts) });

  const progress: SyncProgress = { phase: 'starting', channelsDone: 0, channelsTotal: 0, currentChannel: null };
  setHandler(progressQuery, () => progress);

  const runId = await short.beginRun(input.connectionId, workflowInfo().workflowId);
  try {
    progress.phase = 'principals';
    const plan = await long.syncPrincipals({ connectionId: input.connectionId, runId });
    if (!plan.active) {
      progress.phase = 'skipped';
      await short.finishRun(runId, 'succeeded');
      return { runId, status: 'skipped', channels: 0 };
    }
    progress.phase = 'channels';
    progress.channelsTotal = plan.channels.length;
    const fileIds = new Set<string>();
    for (const channel of plan.channels) {
      progress.currentChannel = channel.name;
      const result = await long.syncChannel({ connectionId: input.connectionId, runId, team: plan.team, channel });
      for (const id of result.fileIds) fileIds.add(id);
      progress.channelsDone++;
    }
    progress.phase = 'files';
    progress.currentChannel = null;
    await long.syncFiles({ connectionId: input.connectionId, runId, channels: plan.channels, fileIds: [...fileIds] });
    await short.finishRun(runId, 'succeeded');
    progress.phase = 'done';
    return { runId, status: 'succeeded', channels: plan.channels.length };
  } catch (err) {
    await short.finishRun(runId, 'failed', err instanceof Error ? err.message : String(err));
    throw err;
  }
}

export { syncDriveWorkflow } from './drive/workflow.ts';

export { syncGraphWorkflow } from './graph/workflow.ts';

export { eraseSubjectWorkflow } from './erasure/workflow.ts';
