/**
 * What an admin does to a connection's syncing, shared by the CLI (`astry pause|resume`) and the
 * admin API (/v1/admin/connections/:id/pause|resume): the Temporal schedule and the connection's
 * status in Postgres move together.
 */
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import { setConnectionStatus } from '../db/connections.ts';
import type { Queryable } from '../db/pool.ts';
import { scheduleId } from './constants.ts';
import { pauseSchedule, unpauseSchedule } from './schedules.ts';

/**
 * Pauses (or resumes) the connection's schedule, then marks the connection paused (or active).
 * The schedule goes first: once the status says paused, no scheduled run starts; a run that starts
 * anyway (a manual trigger) sees the status and does nothing.
 */
export async function setConnectionPaused(
  deps: { pool: Queryable; client: Client },
  connectionId: string,
  paused: boolean,
  note: string,
): Promise<void> {
  if (paused) await pauseSchedule(deps.client, connectionId, note);
  else await unpauseSchedule(deps.client, connectionId, note);
  await setConnectionStatus(deps.pool, connectionId, paused ? 'paused' : 'active');
}

/** What Temporal says of a connection's schedule. */
export interface ScheduleState {
  /** `missing`: the connection has no schedule (created without one, or deleted). */
  state: 'active' | 'paused' | 'missing';
  /** When the schedule next starts a run; null when paused or missing. */
  nextRunAt: Date | null;
  /** The run the schedule is executing now, if any. */
  runningWorkflowId: string | null;
}

/** One describe call of the connection's schedule. */
export async function scheduleState(client: Client, connectionId: string): Promise<ScheduleState> {
  try {
    const { state, info } = await client.schedule.getHandle(scheduleId(connectionId)).describe();
    return {
      state: state.paused ? 'paused' : 'active',
      nextRunAt: state.paused ? null : (info.nextActionTimes[0] ?? null),
      runningWorkflowId: info.runningActions[0]?.workflow.workflowId ?? null,
    };
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return { state: 'missing', nextRunAt: null, runningWorkflowId: null };
    throw err;
  }
}
