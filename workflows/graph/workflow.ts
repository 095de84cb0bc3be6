// Deterministic workflow code only: activities are imported as types and called through proxies.
import { inSyncRun, syncActivities } from '../run.ts';
import type { SyncInput, SyncProgress, SyncSummary } from '../types.ts';
import type { GraphActivities } from './activities.ts';

/**
 * One incremental sync of a Microsoft 365 connection: principals first (users, groups, site
 * groups: revocations land before new content), then each document library from its delta cursor.
 * Its progress has the Slack workflow's shape, so `astry sync` draws one bar for both (drives as "channels").
 */
export async function syncGraphWorkflow(input: SyncInput): Promise<SyncSummary> {
  const long = syncActivities<GraphActivities>(input);
  const progress: SyncProgress = { phase: 'starting', channelsDone: 0, channelsTotal: 0, currentChannel: null };
  return inSyncRun(input, progress, async (runId) => {
    progress.phase = 'principals';
    const plan = await long.syncGraphPrincipals({ connectionId: input.connectionId, runId });
    if (!plan.active) {
      progress.phase = 'skipped';
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
    return { runId, status: 'succeeded', channels: plan.drives.length };
  });
}
