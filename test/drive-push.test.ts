import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { GROUP, ITEM, email } from '../fixtures/drive/ids.ts';
import { deleteSchedule, ensureSchedule, triggerSync } from '../workflows/schedules.ts';
import { registerDriveWebhookRoutes } from '../workflows/drive/webhook.ts';
import { startDriveHarness, type DriveHarness } from './support/drive-harness.ts';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await check()) return Date.now() - started;
    await sleep(50);
  }
  throw new Error(`not reached within ${timeoutMs} ms`);
}

describe('Drive push notifications trigger a run of the connection schedule', () => {
  let h: DriveHarness;
  let app: FastifyInstance;
  let base: string;
  const triggers: { workflowId: string | null; state: string }[] = [];

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}/v1/webhooks/drive`;
    h = await startDriveHarness({ config: { webhookUrl: base } });
    app = Fastify({ logger: false });
    await registerDriveWebhookRoutes(app, { pool: h.db.pool, temporal: h.client, onTrigger: (e) => triggers.push(e) });
    await app.listen({ port, host: '127.0.0.1' });
    // The default interval (15 min): only the push makes this run happen within the test.
    await ensureSchedule(h.client, { connectionId: h.connectionId, taskQueue: h.taskQueue, intervalSeconds: 900, source: 'drive', workflowInput: { heartbeatTimeoutSeconds: 10 } });
    await h.sync();
  });
  after(async () => {
    await deleteSchedule(h.client, h.connectionId).catch(() => undefined);
    await app.close();
    await h.close();
  });

  test('the first sync registers one channel per change log', () => {
    assert.deepEqual(h.emulator.state.channels.map((c) => c.log).sort(), ['0ADENGINEERING', '0ADFINANCE', 'user']);
    assert.ok(h.emulator.state.channels.every((c) => c.address === `${base}/${h.connectionId}` && c.token));
  });

  test('a deleted discoverable link is enforced within seconds of the change, through push', async () => {
    assert.equal((await h.readable('gina')).has(`file:${ITEM.publicTxt}`), true);
    const changedAt = Date.now();
    h.emulator.state.removePermission(ITEM.publicTxt, 'anyone');
    const ms = await until(async () => !(await h.readable('gina')).has(`file:${ITEM.publicTxt}`), 30_000);
    console.log(`# event-triggered: change -> enforced in ${Date.now() - changedAt} ms (poll resolution 50 ms, ${ms} ms)`);
    assert.ok(triggers.some((t) => t.state === 'change' && t.workflowId !== null), 'the route started a run');
  });

  test('a wrong channel token is refused and triggers nothing', async () => {
    const channel = h.emulator.state.channels[0];
    assert.ok(channel);
    const before = triggers.length;
    const response = await fetch(`${base}/${h.connectionId}`, {
      method: 'POST',
      headers: { 'X-Goog-Channel-ID': channel.id, 'X-Goog-Channel-Token': 'forged', 'X-Goog-Resource-State': 'change' },
    });
    assert.equal(response.status, 404);
    assert.equal(triggers.length, before);
  });

  test('a group membership change sends no push: it waits for the schedule (bounded by its interval)', async () => {
    const pushes = h.emulator.pushes.length;
    h.emulator.state.removeGroupMember(GROUP.eng, email('bob'));
    await sleep(1_500);
    assert.equal(h.emulator.pushes.length, pushes, 'Drive reports group edits nowhere');
    assert.equal((await h.readable('bob')).has(`file:${ITEM.engGroupTxt}`), true, 'not enforced before the next run');
    // What the interval elapsing does: a scheduled run, then the revocation holds.
    const started = Date.now();
    await triggerSync(h.client, h.connectionId);
    const ms = await until(async () => !(await h.readable('bob')).has(`file:${ITEM.engGroupTxt}`), 30_000);
    console.log(`# scheduled: enforced ${Date.now() - started} ms after the run starts (${ms} ms); worst case = interval (900 s) + this`);
  });
});
