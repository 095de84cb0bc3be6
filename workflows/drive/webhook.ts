/**
 * Drive push notifications (https://developers.google.com/workspace/drive/api/guides/push): Drive
 * POSTs a bodiless request with X-Goog-* headers to the channel's address whenever a watched change
 * log moves. The route checks the channel id and its secret token against the channels the sync
 * registered, and starts a run of the connection's schedule (overlap still governed by it).
 */
import { timingSafeEqual } from 'node:crypto';
import { ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { scheduleId } from '../constants.ts';
import { triggerSync } from '../schedules.ts';
import { WatchCursorSchema } from './scope.ts';

/** What the Drive push route needs. */
export interface DriveWebhookDeps {
  pool: pg.Pool;
  /** Temporal client whose schedules the route triggers. */
  temporal: Client;
  /** Called with each accepted notification's outcome (logs, tests). */
  onTrigger?: (event: { connectionId: string; workflowId: string | null; state: string }) => void;
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The channels registered for a connection (sync_cursors `watch:<scope>`). */
async function channelsOf(pool: pg.Pool, connectionId: string): Promise<{ id: string; token: string }[]> {
  const { rows } = await pool.query<{ cursor: unknown }>(`SELECT cursor FROM sync_cursors WHERE connection_id = $1 AND scope LIKE 'watch:%'`, [connectionId]);
  return rows.flatMap((r) => {
    const parsed = WatchCursorSchema.safeParse(r.cursor);
    return parsed.success ? [parsed.data] : [];
  });
}

/**
 * Starts a run now. When one is already running it may have read the change log before this
 * change, so one more run is buffered after it (BUFFER_ONE) instead of the change waiting for the
 * next interval.
 */
async function runSoon(client: Client, connectionId: string): Promise<string | null> {
  const handle = client.schedule.getHandle(scheduleId(connectionId));
  const running = (await handle.describe()).info.runningActions[0];
  if (!running) return triggerSync(client, connectionId);
  await handle.trigger(ScheduleOverlapPolicy.BUFFER_ONE);
  return null;
}

/** Registers `POST /v1/webhooks/drive/:connectionId`; for buildApi: `routes: [(app) => registerDriveWebhookRoutes(app, deps)]`. */
export async function registerDriveWebhookRoutes(app: FastifyInstance, deps: DriveWebhookDeps): Promise<void> {
  app.post<{ Params: { connectionId: string } }>(
    '/v1/webhooks/drive/:connectionId',
    {
      schema: {
        hide: true,
        params: { type: 'object', required: ['connectionId'], properties: { connectionId: { type: 'string', pattern: '^[0-9]{1,18}$' } } },
      },
    },
    async (request, reply) => {
      const { connectionId } = request.params;
      const channelId = request.headers['x-goog-channel-id'];
      const token = request.headers['x-goog-channel-token'];
      const state = String(request.headers['x-goog-resource-state'] ?? '');
      if (typeof channelId !== 'string' || typeof token !== 'string') return reply.code(400).send({ error: 'SOURCE_BAD_DATA', message: 'missing channel headers' });
      const known = (await channelsOf(deps.pool, connectionId)).find((c) => c.id === channelId);
      // Unknown channel and wrong token look the same: nothing tells a prober which one it got.
      if (!known || !equal(known.token, token)) return reply.code(404).send({ error: 'NOT_FOUND', message: 'no such channel' });
      // `sync` only confirms a new channel; everything else means the change log moved.
      const workflowId = state === 'sync' ? null : await runSoon(deps.temporal, connectionId);
      deps.onTrigger?.({ connectionId, workflowId, state });
      return reply.code(204).send();
    },
  );
}
