import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { env } from '../core/env.ts';
import { upsertDirectoryUsers } from '../db/directory.ts';
import { OpenAIFake } from '../fixtures/llm/openai-fake.ts';
import { finalText } from '../fixtures/llm/script.ts';
import { AskQueue, redisConnection } from '../worker/queue.ts';
import { startHarness, type SyncHarness } from './support/harness.ts';
import { spawnReady } from './support/spawn.ts';

const script = fileURLToPath(new URL('./support/query-worker-process.ts', import.meta.url));

describe('a query worker killed mid-job', () => {
  let h: SyncHarness;
  let fake: OpenAIFake;
  let base: string;
  const queueName = `astry-ask-crash-${randomBytes(4).toString('hex')}`;
  before(async () => {
    h = await startHarness({ worker: true });
    await h.sync();
    await upsertDirectoryUsers(h.db.pool, h.workspaceId, [{ email: 'alice@ex.com', displayName: 'Alice', active: true }]);
    // The first model call hangs long enough to kill the worker during it; the retry is answered at once.
    fake = await OpenAIFake.start([
      { kind: 'text', text: 'slow answer', delayMs: 6_000 },
      finalText('Recovered answer.'),
    ]);
    base = await mkdtemp(join(tmpdir(), 'astry-qcrash-'));
  });
  after(async () => {
    await fake?.close();
    await h?.close();
  });

  function spawnWorker(): Promise<ChildProcess> {
    return spawnReady(script, {
        ...process.env, DATABASE_URL: h.db.url, ASTRY_KEK_FILE: h.kekFile, FAKE_MODEL_URL: fake.url, ASTRY_ASK_QUEUE: queueName,
        ASTRY_SANDBOX_DIR: join(base, 'sandboxes'), ASTRY_AUDIT_SPOOL_DIR: join(base, 'spool'),
        ASTRY_AUDIT_CHECKPOINT_DIR: join(base, 'checkpoints'), ASTRY_AUDIT_SIGNING_KEY: join(base, 'audit.pem'),
    }, 'query worker ready');
  }

  async function sandboxesOf(pid: number | undefined): Promise<string[]> {
    return readdir(join(base, 'sandboxes', `worker-${pid}`)).catch(() => []);
  }

  test('the crashed worker’s sandbox is swept and the job completes on another worker', async () => {
    const first = await spawnWorker();
    const queue = new AskQueue(redisConnection(env().REDIS_URL), queueName);
    const { rows } = await h.db.pool.query<{ id: number }>(`SELECT id FROM principals WHERE key = 'email:alice@ex.com'`);
    const answer = queue.ask({ requestId: randomUUID(), workspaceId: h.workspaceId, principalId: rows[0]?.id ?? 0, question: 'What is on the GENERAL roadmap?' }, 90_000);
    // Wait until the job is inside the model step: its sandbox exists and the model was called.
    while ((await sandboxesOf(first.pid)).length === 0 || fake.requests.length === 0) await sleep(50);
    first.kill('SIGKILL');
    await once(first, 'exit');
    assert.equal((await sandboxesOf(first.pid)).length, 1, 'a crash leaves the sandbox behind until the next start');

    const second = await spawnWorker();
    try {
      assert.deepEqual(await readdir(join(base, 'sandboxes')), [`worker-${second.pid}`], 'the next worker swept the crashed one’s sandboxes');
      const result = await answer;
      assert.equal(result.answer.text.includes('Recovered answer'), true);
      assert.deepEqual(await sandboxesOf(second.pid), [], 'and destroyed its own after answering');
    } finally {
      second.kill('SIGTERM');
      await once(second, 'exit');
      await queue.close();
    }
  });
});
