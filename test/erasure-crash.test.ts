import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalEd25519Signer } from '../audit/signer.ts';
import { verifyAudit } from '../audit/verify.ts';
import { verifySignedBundle } from '../erasure/bundle.ts';
import { footprintDocumentIds } from '../erasure/footprint.ts';
import { getRecord } from '../erasure/records.ts';
import { startErasure } from '../erasure/request.ts';
import { bundleOf } from '../erasure/result.ts';
import { USER } from '../fixtures/slack/ids.ts';
import { principalOfSourceUser } from './support/access.ts';
import { startHarness, type SyncHarness } from './support/harness.ts';
import { spawnSyncWorker } from './support/spawn.ts';

describe('an erasure whose worker is killed mid-purge', () => {
  let h: SyncHarness;
  let dir: string;
  let signer: LocalEd25519Signer;

  before(async () => {
    h = await startHarness();
    await h.sync();
    await h.stopWorker(); // only the worker processes below serve the task queue
    dir = await mkdtemp(join(tmpdir(), 'astry-erasure-crash-'));
    signer = await LocalEd25519Signer.open(join(dir, 'audit.pem'));
  });
  after(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The production worker (sync + erasure activities, services from the environment) in its own process. */
  function spawnWorker(): Promise<ChildProcess> {
    return spawnSyncWorker(h, {
        ASTRY_AUDIT_SIGNING_KEY: join(dir, 'audit.pem'), ASTRY_AUDIT_SPOOL_DIR: join(dir, 'spool'), ASTRY_AUDIT_CHECKPOINT_DIR: join(dir, 'checkpoints'),
        // The ask-queue purge talks to Redis: a database of its own keeps it off anyone's real queue.
        REDIS_URL: 'redis://127.0.0.1:6379/13',
    });
  }

  test('the erasure completes on a new worker, every document counted exactly once', async () => {
    const bobId = await principalOfSourceUser(h.db.pool, h.connectionId, USER.bob);
    const subject = { workspaceId: h.workspaceId, principalId: bobId, pseudonym: '' };
    const documents = await footprintDocumentIds(h.db.pool, subject);
    assert.ok(documents.length > 9, `bob has ${documents.length} documents`);
    // Hold the last of his documents: the purge (ascending ids, 3 per transaction) stops there, mid-way.
    const blocker = await h.db.pool.connect();
    await blocker.query('BEGIN');
    await blocker.query(`SELECT id FROM documents WHERE id = $1 FOR UPDATE`, [documents.at(-1)]);

    const first = await spawnWorker();
    const handle = await startErasure(
      { pool: h.db.pool, keys: h.deps.keys, client: h.client, taskQueue: h.taskQueue },
      { workspaceId: h.workspaceId, subject: 'bob@ex.com', requestedBy: 'test:dpo' },
      { batchSize: 3, heartbeatTimeoutSeconds: 3 },
    );
    const done = Math.floor((documents.length - 1) / 3) * 3;
    for (let i = 0; ; i++) {
      const counted = (await getRecord(h.db.pool, handle.requestId))?.counts.documents ?? 0;
      if (counted >= done) break;
      assert.ok(i < 600, `purge stuck at ${counted} of ${done}`);
      await sleep(100);
    }
    first.kill('SIGKILL');
    await once(first, 'exit');
    await blocker.query('ROLLBACK');
    blocker.release();

    const second = await spawnWorker();
    let result;
    try {
      result = await handle.result();
    } finally {
      second.kill('SIGTERM');
      await once(second, 'exit');
    }
    assert.equal(result.erased.documents, documents.length, 'counted exactly once across the crash');
    assert.deepEqual(await footprintDocumentIds(h.db.pool, subject), []);
    const verdict = verifySignedBundle(bundleOf(result), { publicKey: signer.publicKey });
    assert.ok(verdict.ok, JSON.stringify(verdict));
    assert.equal(verdict.manifest.erased.documents, documents.length);
    const chain = await verifyAudit(h.db.pool, { publicKey: signer.publicKey, checkpointDir: join(dir, 'checkpoints') });
    assert.equal(chain.ok, true, JSON.stringify(chain));
  });
});
