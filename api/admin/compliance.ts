/** Compliance routes of /v1/admin (role astry.compliance): the same library calls as `astry erase` and `astry audit verify`. */
import { WorkflowNotFoundError } from '@temporalio/client';
import type pg from 'pg';
import { verifyAudit, type VerifyOptions, type VerifyResult } from '../../audit/verify.ts';
import { AstryError } from '../../core/errors.ts';
import { getRecord } from '../../erasure/records.ts';
import { startErasure, triggerRescans } from '../../erasure/request.ts';
import { resultOf } from '../../erasure/result.ts';
import type { KeyProvider } from '../../vault/key-provider.ts';
import type { ErasureResult } from '../../workflows/erasure/types.ts';
import { withTemporal, type AdminTemporal } from './temporal.ts';

/** What the compliance routes talk to. */
export interface ComplianceRouteDeps {
  pool: pg.Pool;
  keys: KeyProvider;
  workspaceId: string;
  temporal: AdminTemporal | undefined;
  temporalTimeoutMs: number;
  /** The key and checkpoint files the audit chain is checked against (as `astry audit verify`). */
  auditVerify: VerifyOptions;
  /** Failures of work done after the answer (rebuilding shared documents); default console.warn. */
  onWarning: (message: string, err?: unknown) => void;
}

/** An erasure request as the API shows it. */
export type ErasureView =
  | { requestId: string; status: 'running' | 'failed'; joined?: boolean }
  | ({ requestId: string; status: 'completed'; joined?: boolean } & Pick<ErasureResult, 'completedAt' | 'erased' | 'destroyedKeyIds' | 'bundle'>);

function completed(result: ErasureResult): ErasureView {
  const { requestId, completedAt, erased, destroyedKeyIds, bundle } = result;
  return { requestId, status: 'completed', completedAt, erased, destroyedKeyIds, bundle };
}

/**
 * POST /v1/admin/erasures: starts the subject's erasure, or joins the one running or done (same
 * request id). With `resync`, once it completes this process triggers the syncs that rebuild shared
 * documents without the person, as `astry erase` does; if the process stops first, the connections'
 * next scheduled runs do it.
 */
export async function requestErasure(
  deps: ComplianceRouteDeps,
  input: { subject: string; reason?: string; resync: boolean; requestedBy: string },
): Promise<ErasureView> {
  const handle = await withTemporal(deps.temporal, deps.temporalTimeoutMs, (t) =>
    startErasure(
      { pool: deps.pool, keys: deps.keys, client: t.client, taskQueue: t.taskQueue },
      { workspaceId: deps.workspaceId, subject: input.subject, requestedBy: input.requestedBy, ...(input.reason === undefined ? {} : { reason: input.reason }) },
    ),
  );
  const done = await getRecord(deps.pool, handle.requestId);
  if (done?.status === 'completed') return { ...completed(resultOf(done)), joined: handle.joined };
  const client = deps.temporal?.client;
  if (input.resync && client !== undefined) {
    handle.result().then((result) => triggerRescans(client, result)).catch((err: unknown) => deps.onWarning(`erasure ${handle.requestId}: shared documents are rebuilt at the next scheduled syncs`, err));
  }
  return { requestId: handle.requestId, status: 'running', joined: handle.joined };
}

/**
 * GET /v1/admin/erasures/:id: the stored request (completed ones carry the signed bundle), else
 * what Temporal says of the workflow (running, or failed). Another workspace's id is NOT_FOUND.
 */
export async function erasureStatus(deps: ComplianceRouteDeps, id: string): Promise<ErasureView> {
  if (!id.startsWith(`erasure-${deps.workspaceId}-`) || id.length > 100) throw new AstryError('NOT_FOUND', `no erasure request ${id}`);
  const record = await getRecord(deps.pool, id);
  if (record?.status === 'completed') return completed(resultOf(record));
  // The workflow's first activity stores the request: just after POST, only Temporal knows of it.
  const status = await withTemporal(deps.temporal, deps.temporalTimeoutMs, (t) =>
    t.client.workflow.getHandle(id).describe().then(
      (d) => d.status.name,
      (err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      },
    ),
  );
  if (status === 'COMPLETED') {
    const after = await getRecord(deps.pool, id);
    if (after?.status === 'completed') return completed(resultOf(after));
  }
  if (status === undefined && record === null) throw new AstryError('NOT_FOUND', `no erasure request ${id}`);
  // A running record whose workflow Temporal no longer keeps (retention) cannot be running any more.
  return { requestId: id, status: status === 'RUNNING' || status === 'COMPLETED' ? 'running' : 'failed' };
}

/** GET /v1/admin/audit/verify: the chain and its signed checkpoints, as `astry audit verify`. */
export function verifyAuditTrail(deps: ComplianceRouteDeps): Promise<VerifyResult> {
  return verifyAudit(deps.pool, deps.auditVerify);
}
