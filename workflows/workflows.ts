// Deterministic workflow code only: activities are imported as types and called through proxies.
import { defineQuery } from '@temporalio/workflow';
import type { SyncActivities } from './activities/index.ts';
import { inSyncRun, PROGRESS_QUERY, syncActivities } from './run.ts';
import type { SyncInput, SyncProgress, SyncSummary } from './types.ts';

/** Query the CLI polls to draw its progress bar (every sync workflow answers it: workflows/run.ts). */
export const progressQuery = defineQuery<SyncProgress>(PROGRESS_QUERY);

/**
 * One incremental sync of a connection: principals and ACLs first (so revocations land before new
 * content), then each channel's changed documents, then files (whose ACL spans channels).
 */
export async function syncConnectionWorkflow(input: SyncInput): Promise<SyncSummary> {
  const long = syncActivities<SyncActivities>(input);
  const progress: SyncProgress = { phase: 'starting', channelsDone: 0, channelsTotal: 0, currentChannel: null };
  return inSyncRun(input, progress, async (runId) => {
    progress.phase = 'principals';
    const plan = await long.syncPrincipals({ connectionId: input.connectionId, runId });
    if (!plan.active) {
      progress.phase = 'skipped';
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
    return { runId, status: 'succeeded', channels: plan.channels.length };
  });
}

export { syncDriveWorkflow } from './drive/workflow.ts';

export { syncGraphWorkflow } from './graph/workflow.ts';

export { eraseSubjectWorkflow } from './erasure/workflow.ts';
