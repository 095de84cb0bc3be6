/**
 * Starting an erasure, for the CLI and the API: resolve the subject, then start the workflow under
 * an id derived from their pseudonym. A repeat request joins the running workflow or returns the
 * completed one's result (from the database, which outlives Temporal's retention).
 */
import { ScheduleNotFoundError, WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type pg from 'pg';
import { AstryError } from '../core/errors.ts';
import type { KeyProvider } from '../vault/key-provider.ts';
import { triggerSync } from '../workflows/schedules.ts';
import { ERASURE_WORKFLOW, erasureWorkflowId, type ErasureInput, type ErasureResult } from '../workflows/erasure/types.ts';
import { recordForSubject } from './records.ts';
import { resultOf } from './result.ts';
import { resolveSubject } from './subject.ts';

/** What starting an erasure talks to. */
export interface ErasureStarter {
  pool: pg.Pool;
  keys: KeyProvider;
  client: Client;
  /** Task queue of the worker running erasure activities (the sync worker's: ASTRY_TASK_QUEUE). */
  taskQueue: string;
}

/** One request from a compliance officer. */
export interface ErasureRequest {
  workspaceId: string;
  /** `gina@ex.com`, `email:gina@ex.com`, a canonical user key, or a source account such as `slack:U0GINA`. */
  subject: string;
  /** Who asks, e.g. `cli:<os user>` or `principal:<id>`; recorded in the audit entry and the manifest. */
  requestedBy: string;
  /** Free text for the record, e.g. a ticket reference. Do not put personal data here. */
  reason?: string;
}

/** A started (or joined, or already finished) erasure. */
export interface ErasureHandle {
  requestId: string;
  pseudonym: string;
  /** True when this request found an erasure of the same subject already running or done. */
  joined: boolean;
  result(): Promise<ErasureResult>;
}

/** Starts the subject's erasure, or joins the one already running or finished. NOT_FOUND for an unknown person. */
export async function startErasure(
  deps: ErasureStarter,
  request: ErasureRequest,
  opts: Pick<ErasureInput, 'heartbeatTimeoutSeconds' | 'batchSize'> = {},
): Promise<ErasureHandle> {
  const subject = await resolveSubject(deps.pool, deps.keys, request.workspaceId, request.subject);
  const requestId = erasureWorkflowId(request.workspaceId, subject.pseudonym);
  const previous = await recordForSubject(deps.pool, request.workspaceId, subject.pseudonym);
  if (previous?.status === 'completed') {
    const result = resultOf(previous);
    return { requestId: previous.id, pseudonym: subject.pseudonym, joined: true, result: () => Promise.resolve(result) };
  }
  if (subject.principalId === null && !previous) throw new AstryError('NOT_FOUND', `no person ${request.subject} in this workspace`);

  const running = await deps.client.workflow.getHandle(requestId).describe().then((d) => d.status.name === 'RUNNING', () => false);
  const input: ErasureInput = {
    requestId, workspaceId: request.workspaceId, principalId: subject.principalId, pseudonym: subject.pseudonym,
    requestedBy: request.requestedBy, reason: request.reason ?? null, requestedAt: new Date().toISOString(), ...opts,
  };
  try {
    const handle = await deps.client.workflow.start(ERASURE_WORKFLOW, {
      taskQueue: deps.taskQueue, workflowId: requestId, args: [input],
      // Join a running erasure; after a failed one, start again; a completed one is never repeated.
      workflowIdConflictPolicy: 'USE_EXISTING', workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    });
    return { requestId, pseudonym: subject.pseudonym, joined: running, result: () => handle.result() };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const handle = deps.client.workflow.getHandle<(input: ErasureInput) => Promise<ErasureResult>>(requestId);
    return { requestId, pseudonym: subject.pseudonym, joined: true, result: () => handle.result() };
  }
}

/** startErasure and wait for the result. */
export async function eraseSubject(
  deps: ErasureStarter,
  request: ErasureRequest,
  opts: Pick<ErasureInput, 'heartbeatTimeoutSeconds' | 'batchSize'> = {},
): Promise<{ joined: boolean; result: ErasureResult }> {
  const handle = await startErasure(deps, request, opts);
  return { joined: handle.joined, result: await handle.result() };
}

/**
 * Triggers the sync of every connection whose documents were rebuilt-on-next-sync, so others' messages
 * in shared threads come back (without the subject) now rather than at the next scheduled run.
 * Connections without a schedule are skipped. Returns the connection ids triggered.
 */
export async function triggerRescans(client: Client, result: ErasureResult): Promise<string[]> {
  const triggered: string[] = [];
  for (const connectionId of result.rescanConnections) {
    try {
      await triggerSync(client, connectionId);
      triggered.push(connectionId);
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  }
  return triggered;
}
