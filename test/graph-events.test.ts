import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { FILES, SITE } from '../fixtures/graph/ids.ts';
import { deleteSchedule, ensureSchedule, triggerSync } from '../workflows/schedules.ts';
import { registerGraphWebhookRoutes } from '../workflows/graph/webhook.ts';
import { webhookPath } from '../connectors/graph/config.ts';
import { env } from '../core/env.ts';
import { startGraphHarness, type GraphHarness } from './support/graph-harness.ts';

describe('event-triggered Graph runs through change notifications', () => {
  let h: GraphHarness;
  let app: FastifyInstance;
  let base: string;
  const triggers: number[] = [];
  before(async () => {
    app = Fastify();
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    base = `http://127.0.0.1:${port}`;
    h = await startGraphHarness({ notificationBaseUrl: base });
    await registerGraphWebhookRoutes(app, { pool: h.db.pool, temporal: h.client, onTrigger: () => triggers.push(Date.now()) });
    await app.listen({ host: '127.0.0.1', port });
    // The production default interval (900 s): only the notification can make the next run start soon.
    await ensureSchedule(h.client, {
      connectionId: h.connectionId, taskQueue: h.taskQueue, intervalSeconds: env().ASTRY_SYNC_INTERVAL_SECONDS, source: 'graph', workflowInput: { heartbeatTimeoutSeconds: 10 },
    });
  });
  after(async () => {
    await deleteSchedule(h.client, h.connectionId).catch(() => undefined);
    await app.close();
    await h.close();
  });

  test('the first run subscribes every drive; Graph validated the webhook', async () => {
    const workflowId = await triggerSync(h.client, h.connectionId);
    await h.client.workflow.getHandle(workflowId).result();
    const drives = h.emulator.state.tenant.sites.length;
    assert.equal(h.emulator.subscriptions.length, drives);
    assert.ok(h.emulator.subscriptions.every((s) => s.notificationUrl === `${base}${webhookPath(h.connectionId)}`));
  });

  test('a notification with a wrong clientState is refused and triggers nothing', async () => {
    const sub = h.emulator.subscriptions[0];
    assert.ok(sub);
    const response = await fetch(`${base}${webhookPath(h.connectionId)}`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ value: [{ subscriptionId: sub.id, clientState: 'forged-forged-forged', changeType: 'updated', resource: sub.resource }] }),
    });
    assert.equal(response.status, 403);
    assert.equal(triggers.length, 0);
  });

  test('a link deleted at the source is enforced within seconds of the change (event-triggered run)', async () => {
    const state = h.emulator.state;
    const driveId = state.site(SITE.finance)?.driveId ?? '';
    const item = state.itemByPath(driveId, FILES.partnerBrief.path);
    const id = h.sourceId('partnerBrief');
    assert.ok((await h.retrievable('frank')).has(id));
    const link = item.permissions.find((p) => p.link?.scope === 'users');
    assert.ok(link);
    const changedAt = Date.now();
    state.removePermission(item.id, link.id);
    let enforcedAt = 0;
    while (Date.now() - changedAt < 60_000) {
      if (!(await h.retrievable('frank')).has(id)) {
        enforcedAt = Date.now();
        break;
      }
      await sleep(50);
    }
    assert.ok(enforcedAt > 0, 'revoked without waiting for the 900 s schedule');
    assert.ok(triggers.length >= 1, 'the webhook triggered the schedule');
    const latency = enforcedAt - changedAt;
    console.log(`graph revocation latency, event-triggered: ${latency} ms (notification -> trigger ${(triggers[0] ?? changedAt) - changedAt} ms)`);
    assert.ok(latency < 30_000, `enforced in ${latency} ms`);
  });
});
