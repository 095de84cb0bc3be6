import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SITE } from '../fixtures/graph/ids.ts';
import { startGraphHarness, type GraphHarness } from './support/graph-harness.ts';

async function storedIds(h: GraphHarness): Promise<Set<string>> {
  const { rows } = await h.db.pool.query<{ source_id: string }>(`SELECT source_id FROM documents WHERE connection_id = $1`, [h.connectionId]);
  return new Set(rows.map((r) => r.source_id));
}

/** What the tenant holds now: every live file, as source ids. */
function liveIds(h: GraphHarness): Set<string> {
  return new Set(h.emulator.state.tenant.items.filter((i) => !i.folder && !i.deleted).map((i) => `item:${i.driveId}:${i.id}`));
}

describe('Graph throttling and expired delta tokens never lose data', () => {
  let h: GraphHarness;
  before(async () => {
    h = await startGraphHarness({ tenant: { files: 120 } });
  });
  after(async () => {
    await h.close();
  });

  test('429 and 503 storms with Retry-After are survived with back-off; no document is dropped', async () => {
    const { faults } = h.emulator;
    // Every third Graph and SharePoint request throttled, 429s and 503s, then a burst on
    // permissions longer than the client's retry budget (the activity retries from its cursor).
    faults.throttle('*', 40, { status: 429, retryAfterSeconds: 0, every: 3 });
    faults.throttle('delta', 3, { status: 503, retryAfterSeconds: 1 });
    faults.throttle('permissions', 5, { status: 429, retryAfterSeconds: 0 });
    faults.throttle('download', 3, { status: 503, retryAfterSeconds: 0 });
    faults.throttle('siteGroupUsers', 2, { status: 503, retryAfterSeconds: 0 });
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    assert.equal(run.errors, 0);
    assert.equal(faults.pending('permissions') + faults.pending('delta') + faults.pending('download'), 0, 'the storm was consumed, not skipped');
    assert.ok((faults.answered.get('permissions') ?? 0) >= 5);
    assert.deepEqual(await storedIds(h), liveIds(h));
  });

  test('a 410 on an expired delta token triggers a resync that converges', async () => {
    const state = h.emulator.state;
    const driveId = state.site('team-001')?.driveId ?? '';
    const finance = state.site(SITE.finance)?.driveId ?? '';
    // Changes made while the token is being expired: a file deleted, one added, one edited.
    const victim = state.tenant.items.find((i) => i.driveId === driveId && !i.folder && !i.deleted && i.parentId !== null);
    assert.ok(victim);
    state.deleteItem(victim.id);
    state.createFile(driveId, 'Folder 01/after-resync.txt', 'GRAPH-RESYNC-NEWT', 'written while the token expired');
    state.expireDeltaTokens(driveId);
    state.expireDeltaTokens(finance);
    h.emulator.resetRequests();
    const run = await h.sync();
    assert.equal(run.status, 'succeeded');
    assert.ok(h.emulator.calls('delta').some((c) => c.status === 410), 'Graph answered 410');
    assert.ok(run.deleted >= 1, 'the resync swept the deleted file');
    assert.deepEqual(await storedIds(h), liveIds(h), 'converged to the source');
    const again = await h.sync();
    assert.equal(again.indexed + again.deleted, 0, 'and the next run starts from the new deltaLink');
  });
});
