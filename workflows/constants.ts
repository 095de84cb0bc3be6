import type { SourceKind } from '../db/connections.ts';

/** Temporal names shared by the worker, the schedules and the CLI. */
export const SYNC_WORKFLOW = 'syncConnectionWorkflow';

/** The sync workflow type of each source (each exported from workflows/workflows.ts). */
export const SYNC_WORKFLOW_BY_SOURCE: Record<SourceKind, string> = {
  slack: SYNC_WORKFLOW,
  graph: 'syncGraphWorkflow',
  drive: 'syncDriveWorkflow',
};

/** Schedule id of a connection's recurring sync. */
export const scheduleId = (connectionId: string): string => `sync-connection-${connectionId}`;

/** Workflow id prefix for a connection's sync runs (the schedule appends a timestamp). */
export const syncWorkflowId = (connectionId: string): string => `sync-${connectionId}`;
