/** Temporal calls of the admin routes: bounded in time, and a clear 503 when Temporal is absent or down. */
import { isGrpcServiceError, ScheduleNotFoundError, ServiceError, type Client } from '@temporalio/client';
import { AstryError } from '../../core/errors.ts';

/** The admin routes' Temporal: schedules (sync, pause, resume) and the erasure workflow. */
export interface AdminTemporal {
  client: Client;
  /** Task queue of the worker running erasure activities (the sync worker's: ASTRY_TASK_QUEUE). */
  taskQueue: string;
}

// gRPC status codes meaning "the server did not answer" (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNAVAILABLE = 14;

function unreachable(err: unknown): boolean {
  const grpc = err instanceof ServiceError ? err.cause : err;
  return isGrpcServiceError(grpc) && (grpc.code === GRPC_UNAVAILABLE || grpc.code === GRPC_DEADLINE_EXCEEDED);
}

/**
 * Runs `work` against Temporal within `timeoutMs`. UNAVAILABLE when Temporal is not configured or does
 * not answer; CONFLICT when the connection has no schedule (created before schedules, or deleted).
 */
export async function withTemporal<T>(temporal: AdminTemporal | undefined, timeoutMs: number, work: (t: AdminTemporal) => Promise<T>): Promise<T> {
  if (temporal === undefined) throw new AstryError('UNAVAILABLE', 'Temporal is not configured for this API (TEMPORAL_ADDRESS): syncs, pauses and erasures cannot be started');
  try {
    return await temporal.client.withDeadline(Date.now() + timeoutMs, () => work(temporal));
  } catch (err) {
    if (unreachable(err)) throw new AstryError('UNAVAILABLE', 'Temporal is not reachable; try again later', { cause: err });
    if (err instanceof ScheduleNotFoundError) throw new AstryError('CONFLICT', 'the connection has no sync schedule', { cause: err });
    throw err;
  }
}
