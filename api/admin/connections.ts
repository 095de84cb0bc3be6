/** Connection routes of /v1/admin (role astry.admin): the same library calls as `astry connections|sync|pause|resume`. */
import { rotateCredential } from '../../connectors/credentials.ts';
import { AstryError } from '../../core/errors.ts';
import { getConnection, listConnections, type ConnectionSummary } from '../../db/connections.ts';
import type { Queryable } from '../../db/pool.ts';
import { recentErrors } from '../../db/runs.ts';
import { scheduleState, setConnectionPaused, type ScheduleState } from '../../workflows/connection-control.ts';
import type { KeyProvider } from '../../vault/key-provider.ts';
import { triggerSync } from '../../workflows/schedules.ts';
import { withTemporal, type AdminTemporal } from './temporal.ts';

/** What the connection routes talk to. */
export interface ConnectionRouteDeps {
  pool: Queryable;
  workspaceId: string;
  /** Seals a rotated credential. */
  keys: KeyProvider;
  temporal: AdminTemporal | undefined;
  /** Deadline of Temporal calls that change something, in ms. */
  temporalTimeoutMs: number;
}

/** How long the listing waits for each schedule's next run before reporting it unavailable, in ms. */
const SCHEDULE_LOOKUP_MS = 2000;

/** The workspace's connection `id` (digits only: names are for the CLI), else NOT_FOUND. */
export async function connectionById(deps: ConnectionRouteDeps, id: string): Promise<string> {
  if (!/^\d{1,18}$/.test(id)) throw new AstryError('NOT_FOUND', `no connection ${id}`);
  return (await getConnection(deps.pool, id, deps.workspaceId)).id;
}

type Schedule = Omit<ScheduleState, 'state' | 'nextRunAt'> & { state: ScheduleState['state'] | 'unavailable'; nextRunAt: string | null };

async function scheduleOf(deps: ConnectionRouteDeps, connectionId: string): Promise<Schedule> {
  try {
    const s = await withTemporal(deps.temporal, SCHEDULE_LOOKUP_MS, (t) => scheduleState(t.client, connectionId));
    return { ...s, nextRunAt: s.nextRunAt?.toISOString() ?? null };
  } catch (err) {
    // Sync health comes from Postgres; Temporal only adds the next run, so its absence is reported, not fatal.
    if (err instanceof AstryError && err.code === 'UNAVAILABLE') return { state: 'unavailable', nextRunAt: null, runningWorkflowId: null };
    throw err;
  }
}

function view(c: ConnectionSummary, schedule: Schedule) {
  const r = c.lastRun;
  return {
    id: c.id, source: c.source, name: c.name, paused: c.status === 'paused', documents: c.documents,
    lastRun: r === null ? null : {
      workflowId: r.workflowId, status: r.status, startedAt: r.startedAt.toISOString(), finishedAt: r.finishedAt.toISOString(),
      counts: { indexed: r.indexed, unchanged: r.unchanged, aclUpdated: r.aclUpdated, deleted: r.deleted, chunks: r.chunks },
      errors: r.errors, failure: r.failure,
    },
    schedule,
  };
}

/** GET /v1/admin/connections: every connection with its last finished run and its schedule (looked up in parallel). */
export async function listConnectionHealth(deps: ConnectionRouteDeps) {
  const connections = await listConnections(deps.pool, deps.workspaceId);
  const schedules = await Promise.all(connections.map((c) => scheduleOf(deps, c.id)));
  return { connections: connections.map((c, i) => view(c, schedules[i] ?? { state: 'unavailable', nextRunAt: null, runningWorkflowId: null })) };
}

/** POST /v1/admin/connections/:id/sync: a run now through the schedule, as `astry sync --no-wait`. */
export async function triggerConnectionSync(deps: ConnectionRouteDeps, id: string): Promise<{ connectionId: string; workflowId: string }> {
  const connectionId = await connectionById(deps, id);
  const workflowId = await withTemporal(deps.temporal, deps.temporalTimeoutMs, (t) => triggerSync(t.client, connectionId));
  return { connectionId, workflowId };
}

/** POST /v1/admin/connections/:id/pause|resume, as `astry pause|resume`. */
export async function pauseConnection(deps: ConnectionRouteDeps, id: string, paused: boolean): Promise<{ connectionId: string; paused: boolean }> {
  const connectionId = await connectionById(deps, id);
  await withTemporal(deps.temporal, deps.temporalTimeoutMs, (t) =>
    setConnectionPaused({ pool: deps.pool, client: t.client }, connectionId, paused, `${paused ? 'paused' : 'resumed'} through the admin API`),
  );
  return { connectionId, paused };
}

/** GET /v1/admin/connections/:id/errors: item errors of the latest runs. */
export async function connectionErrors(deps: ConnectionRouteDeps, id: string, query: { runs: number; limit: number }) {
  const connectionId = await connectionById(deps, id);
  const { runs, errors, truncated } = await recentErrors(deps.pool, connectionId, query);
  return {
    connectionId,
    runs: runs.map((r) => ({ ...r, startedAt: r.startedAt.toISOString(), finishedAt: r.finishedAt?.toISOString() ?? null })),
    errors: errors.map((e) => ({ ...e, at: e.at.toISOString() })),
    truncated,
  };
}

/**
 * PUT /v1/admin/connections/:id/credential, as `astry connections rotate`: with `verify`, the source
 * must accept the secret first (else SOURCE_AUTH_FAILED, 422). Answers nothing: the secret never
 * leaves in a response, and the audit entry holds the action and the id only.
 */
export async function rotateConnectionCredential(deps: ConnectionRouteDeps, id: string, body: { secret: string; verify: boolean }): Promise<void> {
  const connectionId = await connectionById(deps, id);
  await rotateCredential(deps, { workspaceId: deps.workspaceId, connection: connectionId, secret: body.secret, verify: body.verify });
}
