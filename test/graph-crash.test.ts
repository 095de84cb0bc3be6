import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { getRun } from '../db/runs.ts';
import { startGraphHarness, type GraphHarness } from './support/graph-harness.ts';
import { killAndResume, spawnSyncWorker } from './support/spawn.ts';


describe('a Graph sync worker killed mid-delta', () => {
  let h: GraphHarness;
  before(async () => {
    h = await startGraphHarness({ tenant: { files: 300 }, worker: false });
  });
  after(async () => {
    await h.close();
  });

  test('the delta resumes on a new worker from the committed page, with no file lost or duplicated', async () => {
    const first = await spawnSyncWorker(h);
    const workflowId = `graph-crash-${Date.now()}`;
    const handle = await h.client.workflow.start('syncGraphWorkflow', {
      taskQueue: h.taskQueue, workflowId, args: [{ connectionId: h.connectionId, heartbeatTimeoutSeconds: 4 }],
    });
    // Kill it once a delta page is committed but the drive is not done.
    for (;;) {
      const { rows } = await h.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM sync_cursors WHERE connection_id = $1 AND cursor ? 'resume'`, [h.connectionId]);
      if (Number(rows[0]?.n) > 0) break;
      await sleep(50);
    }
    const stored = await h.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM documents WHERE connection_id = $1`, [h.connectionId]);
    const killedAt = Number(stored.rows[0]?.n);
    await killAndResume(h, first, handle);
    const run = await getRun(h.db.pool, workflowId);
    assert.equal(run?.status, 'succeeded');
    const files = h.emulator.state.tenant.items.filter((i) => !i.folder);
    assert.ok(killedAt < files.length, `killed mid-sync (${killedAt} of ${files.length} stored)`);
    const { rows } = await h.db.pool.query<{ source_id: string }>(`SELECT source_id FROM documents WHERE connection_id = $1`, [h.connectionId]);
    assert.deepEqual(new Set(rows.map((r) => r.source_id)), new Set(files.map((i) => `item:${i.driveId}:${i.id}`)));
    const { rows: bad } = await h.db.pool.query<{ bad: string }>(
      `SELECT count(*) AS bad FROM documents d WHERE (SELECT count(*) FROM vault_blobs b WHERE b.document_id = d.id) <> 1`,
    );
    assert.equal(bad[0]?.bad, '0');
    assert.ok((run?.indexed ?? 0) < files.length * 2, 'the resumed attempt did not start over');
  });
});
