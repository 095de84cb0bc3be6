import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CORPUS } from '../fixtures/llm/corpus.ts';
import { MemorySandbox } from '../fixtures/llm/memory-sandbox.ts';
import { EXTRACTIVE_LABEL, ExtractiveProvider } from '../models/extractive.ts';
import { keywords } from '../models/keywords.ts';
import type { Budget } from '../models/types.ts';

const ROOMY: Budget = { maxUsd: 0, maxTokens: 0, maxToolCalls: 50, maxWallMs: 10_000 };
const MANIFEST = new Set(CORPUS.map((f) => f.name));

describe('extractive provider', () => {
  it('answers with the most relevant sentences and their citations, labelled as extractive', async () => {
    const provider = new ExtractiveProvider();
    const tools = new MemorySandbox(CORPUS);
    const answer = await provider.answer({ question: 'How much is a HOTEL night reimbursed in Europe?', tools, budget: ROOMY });

    assert.ok(answer.text.startsWith(`${EXTRACTIVE_LABEL}: `), answer.text);
    assert.equal(answer.mode, 'extractive');
    assert.equal(answer.provider, 'extractive');
    assert.equal(answer.stop, 'completed');
    assert.equal(answer.partial, false);
    assert.match(answer.text, /\n- Hotel stays are reimbursed up to 200 EUR per night in Europe\. \[doc-001\.txt\]/);
    // The best passage comes first.
    assert.ok(answer.text.indexOf('Hotel stays') < answer.text.indexOf('Meals while travelling'));
    assert.equal(answer.citations[0]?.name, 'doc-001.txt');
    assert.equal(answer.citations[0]?.quote, 'Hotel stays are reimbursed up to 200 EUR per night in Europe.');
    assert.ok(answer.citations.every((c) => MANIFEST.has(c.name)));
    assert.deepEqual(answer.usage, { inputTokens: 0, outputTokens: 0, usd: 0, toolCalls: tools.calls.length });
    // list, one grep per keyword, then reads of the best files.
    assert.deepEqual(tools.calls.map((c) => `${c.tool} ${c.arg ?? ''}`.trim()), [
      'list',
      'grep hotel',
      'grep night',
      'grep reimbursed',
      'grep europe',
      'read doc-001.txt',
      'read doc-003.txt',
    ]);
  });

  it('is deterministic', async () => {
    const ask = () =>
      new ExtractiveProvider().answer({ question: 'What is the policy for flights and trains?', tools: new MemorySandbox(CORPUS), budget: ROOMY });
    const [a, b] = await Promise.all([ask(), ask()]);
    assert.deepEqual(a, b);
    assert.match(a.text, /Book trains instead of flights for trips under 4 hours\. \[doc-001\.txt\]/);
  });

  it('says nothing relevant was found, naming no file, when nothing matches', async () => {
    const tools = new MemorySandbox(CORPUS);
    const answer = await new ExtractiveProvider().answer({ question: 'What is the airspeed velocity of an unladen swallow?', tools, budget: ROOMY });
    assert.equal(answer.text, `${EXTRACTIVE_LABEL}: nothing relevant to your question was found in the files you can read.`);
    assert.deepEqual(answer.citations, []);
    assert.equal(answer.stop, 'completed');
    assert.ok(!tools.calls.some((c) => c.tool === 'read'));
  });

  it('does not search for a question made only of stopwords', async () => {
    const tools = new MemorySandbox(CORPUS);
    const answer = await new ExtractiveProvider().answer({ question: 'What is it about, and why?', tools, budget: ROOMY });
    assert.match(answer.text, /nothing relevant/);
    assert.deepEqual(tools.calls.map((c) => c.tool), ['list']);
    assert.deepEqual(keywords("What's the Q3 launch date of Project Falcon's team?"), ['q3', 'launch', 'date', 'project', 'falcon', 'team']);
  });

  it('stops on the tool-call budget with what it found so far', async () => {
    const tools = new MemorySandbox(CORPUS);
    const answer = await new ExtractiveProvider().answer({
      question: 'When is the Falcon launch?',
      tools,
      budget: { ...ROOMY, maxToolCalls: 2 },
    });
    assert.equal(answer.stop, 'budget_tool_calls');
    assert.equal(answer.partial, true);
    assert.equal(answer.usage.toolCalls, 2);
    assert.equal(tools.calls.length, 2);
    assert.match(answer.text, /^Extractive answer \(no language model\), partial: stopped because the tool-call budget \(2 calls\) was exhausted/);
    // Only `falcon` was grepped: its hit lines are the passages.
    assert.match(answer.text, /- The Q3 launch of Project Falcon is scheduled for 15 September\. \[doc-002\.txt\]/);
    assert.deepEqual(answer.citations.map((c) => c.name), ['doc-002.txt']);
  });

  it('stops on wall time with a slow sandbox', async () => {
    const tools = new MemorySandbox(CORPUS, { delayMs: 150 });
    const started = Date.now();
    const answer = await new ExtractiveProvider().answer({ question: 'hotel flights meals', tools, budget: { ...ROOMY, maxWallMs: 400 } });
    assert.ok(Date.now() - started < 1_500);
    assert.equal(answer.stop, 'budget_time');
    assert.match(answer.text, /the time budget \(400 ms\) was exhausted/);
  });

  it('reads long files in slices and quotes only files of the manifest', async () => {
    const long = { name: 'doc-010.txt', title: 'handbook', text: `${'Filler sentence about nothing. '.repeat(2_000)}\nThe parking garage closes at 22:00.` };
    const tools = new MemorySandbox([...CORPUS, long]);
    const answer = await new ExtractiveProvider().answer({ question: 'When does the parking garage close?', tools, budget: ROOMY });
    assert.match(answer.text, /- The parking garage closes at 22:00\. \[doc-010\.txt\]/);
    assert.ok(tools.calls.filter((c) => c.arg === 'doc-010.txt').length >= 2);
  });
});
