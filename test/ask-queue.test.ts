import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Queue, Worker, type Job } from 'bullmq';
import { AstryError } from '../core/errors.ts';
import { env } from '../core/env.ts';
import type { AskResult } from '../worker/ask.ts';
import { AskQueue, redisConnection, type AskJobData, type AskJobResult } from '../worker/queue.ts';

/** A stand-in answer that echoes the question, so each wait can be checked against its own job. */
function echo(data: AskJobData): AskResult {
  return {
    requestId: data.requestId,
    answer: {
      text: `echo: ${data.question}`, citations: [], mode: 'extractive', model: 'echo', provider: 'test', stop: 'completed', partial: false,
      usage: { inputTokens: 0, outputTokens: 0, usd: 0, toolCalls: 0 },
    },
    citations: [],
    materialized: [],
    retrievalPath: 'exact',
    timings: { identity: 0, retrieval: 0, materialize: 0, toolRunnerStart: 0, model: 0, audit: 0 },
  };
}

describe('the ask queue (producer side, real Redis, a stand-in worker)', () => {
  const connection = redisConnection(env().REDIS_URL);
  const queueName = `astry-ask-queue-test-${randomBytes(4).toString('hex')}`;
  let worker: Worker<AskJobData, AskJobResult>;
  let queue: AskQueue;

  before(async () => {
    worker = new Worker<AskJobData, AskJobResult>(
      queueName,
      async (job: Job<AskJobData, AskJobResult>) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        if (job.data.question === 'refuse me') return { ok: false, code: 'FORBIDDEN', message: 'this account may not ask questions' };
        if (job.data.question === 'crash') throw new Error('worker crashed');
        if (job.data.question === 'slow') await new Promise((resolve) => setTimeout(resolve, 1500));
        return { ok: true, result: echo(job.data) };
      },
      { connection, concurrency: 8 },
    );
    await worker.waitUntilReady();
    queue = new AskQueue(connection, queueName);
  });
  after(async () => {
    await queue?.close();
    await worker?.close();
    const leftovers = new Queue(queueName, { connection });
    await leftovers.obliterate({ force: true });
    await leftovers.close();
  });

  const ask = (question: string, timeoutMs = 30_000) =>
    queue.ask({ requestId: randomUUID(), workspaceId: 'ws-test', principalId: 1, question }, timeoutMs);

  test('25 concurrent waits in one process all get their own answer, with no MaxListeners warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const questions = Array.from({ length: 25 }, (_, i) => `question ${i}`);
      const results = await Promise.all(questions.map((q) => ask(q)));
      assert.deepEqual(results.map((r) => r.answer.text), questions.map((q) => `echo: ${q}`));
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message), []);
  });

  test('an expected failure comes back as an AstryError with its code, an unexpected one as an error', async () => {
    await assert.rejects(ask('refuse me'), (err) => err instanceof AstryError && err.code === 'FORBIDDEN');
    await assert.rejects(ask('crash'), (err) => err instanceof Error && !(err instanceof AstryError) && /worker crashed/.test(err.message));
  });

  test('a request id asked again after its job finished gets the stored answer, not a timeout', async () => {
    const data = { requestId: randomUUID(), workspaceId: 'ws-test', principalId: 1, question: 'once' };
    const first = await queue.ask(data, 30_000);
    const again = await queue.ask({ ...data, question: 'ignored: the job exists' }, 2_000);
    assert.deepEqual(again, first);
  });

  test('a wait that runs out is a TIMEOUT, and a later answer to it disturbs nobody', async () => {
    await assert.rejects(ask('slow', 200), (err) => err instanceof AstryError && err.code === 'TIMEOUT');
    const next = await ask('after the timeout');
    assert.equal(next.answer.text, 'echo: after the timeout');
    await new Promise((resolve) => setTimeout(resolve, 1500));
  });

  test('closing the queue ends the waits still pending', async () => {
    const closing = new AskQueue(connection, queueName);
    const pending = closing.ask({ requestId: randomUUID(), workspaceId: 'ws-test', principalId: 1, question: 'slow' }, 30_000);
    pending.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await closing.close();
    await assert.rejects(pending, /closed/);
    await new Promise((resolve) => setTimeout(resolve, 1500));
  });
});
