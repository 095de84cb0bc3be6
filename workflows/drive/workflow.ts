// Deterministic workflow code only: activities are imported as types and called through proxies.
import { inSyncRun, syncActivities } from '../run.ts';
import type { SyncInput } from '../types.ts';
import type { DriveActivities } from './activities.ts';
import type { DriveSyncProgress, DriveSyncSummary } from './types.ts';

/**
 * One incremental sync of a Drive connection: principals first (group and drive membership, so
 * revocations land before new content), then each change log in turn, My Drive first.
 */
export async function syncDriveWorkflow(input: SyncInput): Promise<DriveSyncSummary> {
  const long = syncActivities<DriveActivities>(input);
  const progress: DriveSyncProgress = { phase: 'starting', scopesDone: 0, scopesTotal: 0, currentScope: null };
  return inSyncRun(input, progress, async (runId) => {
    progress.phase = 'principals';
    const plan = await long.syncDrivePrincipals({ connectionId: input.connectionId, runId });
    if (!plan.active) {
      progress.phase = 'skipped';
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
    return { runId, status: 'succeeded', scopes: plan.scopes.length };
  });
}
