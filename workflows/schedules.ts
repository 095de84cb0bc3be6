import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleHandle } from '@temporalio/client';
import type { SourceKind } from '../db/connections.ts';
import { SYNC_WORKFLOW_BY_SOURCE, scheduleId, syncWorkflowId } from './constants.ts';
import type { SyncInput } from './types.ts';

/** Creates the connection's recurring sync (overlap SKIP: a run never starts while one is going). */
export async function ensureSchedule(
  client: Client,
  input: { connectionId: string; taskQueue: string; intervalSeconds: number; source?: SourceKind; workflowInput?: Partial<SyncInput> },
): Promise<ScheduleHandle> {
  const handle = client.schedule.getHandle(scheduleId(input.connectionId));
  try {
    await handle.describe();
    return handle;
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
  const args: [SyncInput] = [{ ...input.workflowInput, connectionId: input.connectionId }];
  return client.schedule.create({
    scheduleId: scheduleId(input.connectionId),
    spec: { intervals: [{ every: `${input.intervalSeconds}s` }] },
    action: { type: 'startWorkflow', workflowType: SYNC_WORKFLOW_BY_SOURCE[input.source ?? 'slack'], args, taskQueue: input.taskQueue, workflowId: syncWorkflowId(input.connectionId) },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
  });
}

/**
 * Starts a run now through the schedule (so overlap SKIP still holds) and returns the id of the
 * workflow doing it: the new run, or the one already running that the trigger deferred to.
 */
export async function triggerSync(client: Client, connectionId: string, timeoutMs = 15_000): Promise<string> {
  const handle = client.schedule.getHandle(scheduleId(connectionId));
  const before = await handle.describe();
  const known = new Set(before.info.recentActions.map((a) => a.action.workflow.workflowId));
  const running = before.info.runningActions[0];
  if (running) return running.workflow.workflowId;
  await handle.trigger(ScheduleOverlapPolicy.SKIP);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const now = await handle.describe();
    const fresh =
      now.info.runningActions.find((a) => !known.has(a.workflow.workflowId)) ??
      now.info.recentActions.map((a) => a.action).find((a) => !known.has(a.workflow.workflowId));
    if (fresh) return fresh.workflow.workflowId;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the schedule of connection ${connectionId} did not start a run within ${timeoutMs} ms`);
}

export async function pauseSchedule(client: Client, connectionId: string, note: string): Promise<void> {
  await client.schedule.getHandle(scheduleId(connectionId)).pause(note);
}

export async function unpauseSchedule(client: Client, connectionId: string, note: string): Promise<void> {
  await client.schedule.getHandle(scheduleId(connectionId)).unpause(note);
}

export async function deleteSchedule(client: Client, connectionId: string): Promise<void> {
  await client.schedule.getHandle(scheduleId(connectionId)).delete();
}
