import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { getRun } from '../db/runs.ts';
import { SYNC_WORKFLOW } from '../workflows/constants.ts';
import { allDocuments } from './support/access.ts';
import { startHarness, type SyncHarness } from './support/harness.ts';
import { expectedSourceIds } from './support/oracle.ts';
import { killAndResume, spawnSyncWorker } from './support/spawn.ts';


describe('a sync worker killed mid-sync', () => {
  let h: SyncHarness;
  before(async () => {
    h = await startHarness({ scale: 3, worker: false });
  });
  after(async () => {
    await h.close();
  });

  test('the sync completes on a new worker with no document lost or duplicated', async () => {
    const first = await spawnSyncWorker(h);
    const workflowId = `crash-${Date.now()}`;
    const handle = await h.client.workflow.start(SYNC_WORKFLOW, {
      taskQueue: h.taskQueue, workflowId, args: [{ connectionId: h.connectionId, heartbeatTimeoutSeconds: 4 }],
    });
    // Kill it once some, but not all, documents are stored.
    for (;;) {
      const run = await getRun(h.db.pool, workflowId);
      if (run && run.indexed >= 20) break;
      await sleep(50);
    }
    const killedAt = (await getRun(h.db.pool, workflowId))?.indexed ?? 0;
    await killAndResume(h, first, handle);
    const run = await getRun(h.db.pool, workflowId);
    assert.equal(run?.status, 'succeeded');
    const expected = expectedSourceIds(h.emulator.company);
    assert.ok(killedAt < expected.size, `killed mid-sync (${killedAt} of ${expected.size} stored)`);
    assert.deepEqual(new Set((await allDocuments(h.db.pool, h.connectionId)).keys()), expected);
    // No duplicate or orphan rows: every document has one blob and contiguous chunk ordinals.
    const { rows } = await h.db.pool.query<{ bad: string }>(
      `SELECT count(*) AS bad FROM documents d
       WHERE (SELECT count(*) FROM vault_blobs b WHERE b.document_id = d.id) <> 1
          OR (SELECT coalesce(max(ordinal) + 1, 0) FROM chunks c WHERE c.document_id = d.id)
             <> (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)`,
    );
    assert.equal(rows[0]?.bad, '0');
    // The resumed attempt did not start over: fewer documents were (re)indexed than exist twice over.
    assert.ok((run?.indexed ?? 0) < expected.size * 2);
  });
});
