/**
 * The Graph change-notification endpoint: `POST /v1/webhooks/graph/:connectionId`. Answers the
 * validation handshake (echo `validationToken` as text/plain), checks each notification's
 * subscription id and clientState against what the connection stored when it subscribed, and
 * triggers the connection's schedule. Graph wants an answer within 3 s: the trigger is not awaited.
 * https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks
 */
import { timingSafeEqual } from 'node:crypto';
import { ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { Queryable } from '../../db/pool.ts';
import { NotificationsSchema } from '../../connectors/graph/schemas.ts';
import { scheduleId } from '../constants.ts';
import { loadSubscriptions } from './subscriptions.ts';

export interface GraphWebhookDeps {
  pool: Queryable;
  temporal: Client;
  /** Called after a run was requested (tests measure latency with it). */
  onTrigger?: (connectionId: string) => void;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Requests a run of the connection now. Why BUFFER_ONE rather than triggerSync's SKIP: a change
 * notified while a run is going may land after that run read its drive; one buffered run after it
 * picks the change up, and any number of notifications collapse into that one run.
 */
export async function requestRun(temporal: Client, connectionId: string): Promise<void> {
  await temporal.schedule.getHandle(scheduleId(connectionId)).trigger(ScheduleOverlapPolicy.BUFFER_ONE);
}

/** Registers the webhook route (pass as one of buildApi's `routes`). */
export async function registerGraphWebhookRoutes(app: FastifyInstance, deps: GraphWebhookDeps): Promise<void> {
  app.post<{ Params: { connectionId: string }; Querystring: { validationToken?: string } }>(
    '/v1/webhooks/graph/:connectionId',
    {
      schema: {
        description: 'Microsoft Graph change notifications for a connection (subscription validation and driveItem changes).',
        params: { type: 'object', required: ['connectionId'], properties: { connectionId: { type: 'string', pattern: '^[0-9]+$' } } },
        querystring: { type: 'object', properties: { validationToken: { type: 'string', maxLength: 1024 } } },
      },
    },
    async (request, reply) => {
      const { validationToken } = request.query;
      if (validationToken !== undefined) return reply.code(200).type('text/plain').send(validationToken);
      const parsed = NotificationsSchema.safeParse(request.body);
      if (!parsed.success) return reply.code(400).send({ error: 'SOURCE_BAD_DATA', message: 'not a change notification' });
      const { connectionId } = request.params;
      const subscriptions = await loadSubscriptions(deps.pool, connectionId);
      const known = new Set(Object.values(subscriptions?.drives ?? {}).map((s) => s.id));
      const genuine = parsed.data.value.some(
        (n) => subscriptions !== null && known.has(n.subscriptionId) && n.clientState != null && sameSecret(n.clientState, subscriptions.clientState),
      );
      if (!genuine) return reply.code(403).send({ error: 'FORBIDDEN', message: 'unknown subscription or clientState' });
      requestRun(deps.temporal, connectionId).then(
        () => deps.onTrigger?.(connectionId),
        (err: unknown) => request.log.error({ err, connectionId }, 'could not trigger a Graph sync'),
      );
      return reply.code(202).send();
    },
  );
}
