import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { getCursor, getRun } from '../db/runs.ts';
import { buildText } from '../fixtures/slack/files.ts';
import { EXPECTED_READERS, ITEM, type ItemKey } from '../fixtures/drive/ids.ts';
import { readDocument } from '../pipeline/store.ts';
import { SYNC_WORKFLOW_BY_SOURCE } from '../workflows/constants.ts';
import { startDriveHarness, type DriveHarness } from './support/drive-harness.ts';
import { killAndResume, spawnSyncWorker } from './support/spawn.ts';

const FILLERS = 60;
const seededIds = (Object.keys(EXPECTED_READERS) as ItemKey[]).map((k) => `file:${ITEM[k]}`);

async function storedIds(h: DriveHarness): Promise<Set<string>> {
  const { rows } = await h.db.pool.query<{ source_id: string }>(`SELECT source_id FROM documents WHERE connection_id = $1`, [h.connectionId]);
  return new Set(rows.map((r) => r.source_id));
}


describe('Drive sync under quota storms and crashes', () => {
  let h: DriveHarness;
  before(async () => {
    h = await startDriveHarness({ fillerFiles: FILLERS, config: { changesPageSize: 5 } });
  });
  after(async () => {
    await h.close();
  });

  test('403 userRateLimitExceeded and 429 storms are survived with back-off and no document is dropped', async () => {
    const { faults } = h.emulator;
    // Storms longer than one call's back-off budget (4 attempts) fail the activity over to Temporal's retry.
    faults.add('permissions.list', { kind: 'userRateLimit' }, 6);
    faults.add('files.export', { kind: 'tooManyRequests', retryAfterSeconds: 0 }, 5);
    faults.add('files.list', { kind: 'userRateLimit' }, 2);
    faults.add('changes.getStartPageToken', { kind: 'tooManyRequests' }, 2);
    faults.add('members.list', { kind: 'userRateLimit' }, 3);
    faults.add('files.get.media', { kind: 'unavailable' }, 2);
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    assert.equal(run.errors, 0, 'no item given up on');
    for (const method of ['permissions.list', 'files.export', 'files.list', 'members.list', 'files.get.media']) assert.equal(faults.pending(method), 0, `${method} storm consumed`);
    const statuses = new Set(h.emulator.requests.map((r) => r.status));
    assert.ok(statuses.has(403) && statuses.has(429), 'both quota signals were served');
    const stored = await storedIds(h);
    for (const id of seededIds) assert.ok(stored.has(id), `${id} stored`);
    assert.equal(stored.size, seededIds.length + FILLERS);
    assert.equal((await h.readable('bob')).has(`file:${ITEM.budgetDocx}`), true);
  });

  test('a worker killed mid-way through the change log resumes from the committed page token without loss', async () => {
    await h.stopWorker();
    const fillers = [...h.emulator.state.items()].filter((i) => i.id.startsWith('F-FILL-'));
    for (const item of fillers) h.emulator.state.setContent(item.id, buildText(`Rewritten ${item.id}: REVISED-${item.id}`));
    const driveId = fillers[0]?.driveId ?? '';
    const first = await spawnSyncWorker(h);
    const workflowId = `drive-crash-${Date.now()}`;
    const handle = await h.client.workflow.start(SYNC_WORKFLOW_BY_SOURCE.drive, {
      taskQueue: h.taskQueue, workflowId, args: [{ connectionId: h.connectionId, heartbeatTimeoutSeconds: 4 }],
    });
    for (;;) {
      const run = await getRun(h.db.pool, workflowId);
      if (run && run.indexed >= 15) break;
      await sleep(50);
    }
    let killedAt = 0;
    await killAndResume(h, first, handle, async () => {
      killedAt = (await getRun(h.db.pool, workflowId))?.indexed ?? 0;
    });
    const run = await getRun(h.db.pool, workflowId);
    assert.equal(run?.status, 'succeeded');
    assert.ok(killedAt < FILLERS, `killed mid-way (${killedAt} of ${FILLERS})`);
    assert.ok((run?.indexed ?? 0) < FILLERS * 1.5, `resumed, not restarted (${run?.indexed} indexed)`);
    const { rows } = await h.db.pool.query<{ id: string; source_id: string }>(`SELECT id, source_id FROM documents WHERE source_id LIKE 'file:F-FILL-%'`);
    assert.equal(rows.length, FILLERS);
    for (const row of rows) {
      const { text } = await readDocument(h.db.pool, h.deps.keys, row.id);
      assert.ok(text.includes(`REVISED-${row.source_id.slice('file:'.length)}`), `${row.source_id} has its new content`);
    }
    const cursor = await getCursor(h.db.pool, h.connectionId, `changes:${driveId}`);
    assert.deepEqual(cursor, { phase: 'changes', pageToken: h.emulator.state.startPageToken(driveId), fullScanAt: (cursor as { fullScanAt: string }).fullScanAt, retry: [] });
    await h.startWorker();
  });
});
