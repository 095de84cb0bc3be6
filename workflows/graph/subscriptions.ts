/**
 * Graph change-notification subscriptions, one per drive, kept alive by each run: created when
 * missing, re-created a day before they lapse (driveItem subscriptions last at most ~29 days).
 * The clientState is a random secret per connection, stored with the cursors; the webhook checks it.
 * https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { GraphConnector } from '../../connectors/graph/connector.ts';
import { webhookPath } from '../../connectors/graph/config.ts';
import type { Queryable } from '../../db/pool.ts';
import { getCursor, setCursor } from '../../db/runs.ts';

export const SUBSCRIPTIONS_SCOPE = 'graph:subscriptions';
const LIFETIME_MS = 29 * 86_400_000;
const RENEW_BEFORE_MS = 86_400_000;

export const SubscriptionsSchema = z.object({
  clientState: z.string().min(16),
  /** Drive id -> subscription. */
  drives: z.record(z.string(), z.object({ id: z.string(), expiresAt: z.string() })).default({}),
});
export type Subscriptions = z.infer<typeof SubscriptionsSchema>;

export async function loadSubscriptions(db: Queryable, connectionId: string): Promise<Subscriptions | null> {
  const parsed = SubscriptionsSchema.safeParse(await getCursor(db, connectionId, SUBSCRIPTIONS_SCOPE));
  return parsed.success ? parsed.data : null;
}

/** Ensures a live subscription per drive pointing at this connection's webhook; returns how many were (re)created. */
export async function ensureSubscriptions(
  db: Queryable,
  graph: GraphConnector,
  connectionId: string,
  notificationBaseUrl: string,
  driveIds: readonly string[],
): Promise<number> {
  const state: Subscriptions = (await loadSubscriptions(db, connectionId)) ?? { clientState: randomBytes(24).toString('base64url'), drives: {} };
  const url = `${notificationBaseUrl.replace(/\/$/, '')}${webhookPath(connectionId)}`;
  let created = 0;
  for (const driveId of driveIds) {
    const current = state.drives[driveId];
    if (current && Date.parse(current.expiresAt) - Date.now() > RENEW_BEFORE_MS) continue;
    // Saved before subscribing: Graph validates the URL, and the webhook checks clientState against this row.
    await setCursor(db, connectionId, SUBSCRIPTIONS_SCOPE, state);
    state.drives[driveId] = await graph.subscribe(driveId, url, state.clientState, new Date(Date.now() + LIFETIME_MS));
    created++;
  }
  await setCursor(db, connectionId, SUBSCRIPTIONS_SCOPE, state);
  return created;
}
