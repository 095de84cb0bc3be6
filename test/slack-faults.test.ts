import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FILE } from '../fixtures/slack/ids.ts';
import { allDocuments } from './support/access.ts';
import { startHarness, type SyncHarness } from './support/harness.ts';
import { expectedSourceIds } from './support/oracle.ts';

describe('Slack emulator faults never crash a run or lose data', () => {
  let h: SyncHarness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  test('429 storms, 500s, malformed JSON, a corrupt PDF and a 50 MB file: per-item errors and retries', async () => {
    const { faults } = h.emulator;
    // More 429s than the client's retry budget: the activity fails over to Temporal's retry.
    faults.rateLimit('conversations.history', 6, 1);
    faults.serverError('conversations.replies', 3);
    faults.malformed('conversations.members', 1);
    faults.malformed('conversations.replies', 1);
    faults.corruptFile(FILE.specPdf);
    faults.hugeFile(FILE.planDocx);
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    assert.equal(faults.pending('conversations.history'), 0, 'the storm was consumed, not skipped');

    const { rows } = await h.db.pool.query<{ item_id: string; code: string }>(`SELECT item_id, code FROM sync_errors ORDER BY item_id`);
    const byItem = new Map(rows.map((r) => [r.item_id, r.code]));
    assert.equal(byItem.get(`file:${FILE.specPdf}`), 'EXTRACT_FAILED');
    assert.equal(byItem.get(`file:${FILE.planDocx}`), 'TOO_LARGE');

    // Nothing is silently lost: every expected item is stored or has its own recorded error.
    const expected = expectedSourceIds(h.emulator.company);
    const stored = new Set((await allDocuments(h.db.pool, h.connectionId)).keys());
    const missing = [...expected].filter((id) => !stored.has(id));
    assert.ok(missing.length >= 2 && missing.length <= 3, `only the bad items are missing: ${missing.join(', ')}`);
    for (const id of missing) assert.ok(byItem.has(id), `${id} is missing without an error`);
  });

  test('once the source is healthy again the next run brings the failed items in', async () => {
    h.emulator.reset();
    const run = await h.sync();
    assert.equal(run.errors, 0);
    const stored = new Set((await allDocuments(h.db.pool, h.connectionId)).keys());
    assert.deepEqual(stored, expectedSourceIds(h.emulator.company));
  });
});
