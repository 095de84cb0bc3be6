/**
 * The agent loop shared by the chat providers: send the conversation and the tool schemas, run the
 * tool calls through SandboxTools, feed the results back, until the model answers or a budget stops
 * it. A stopped loop still answers: partial, saying which budget stopped it and what was found.
 */
import { answerSignal, raceAbort } from './abort.ts';
import type { ChatMessage, ChatResult, ChatTransport } from './chat.ts';
import { type BudgetStop, BudgetMeter, describeStop } from './budget.ts';
import { filterCitations } from './citations.ts';
import { ModelError } from './errors.ts';
import type { ModelPrice } from './prices.ts';
import { SYSTEM_PROMPT } from './prompt.ts';
import { TOOL_SPECS, Toolbox } from './toolbox.ts';
import type { Answer, AnswerRequest, Citation, StopReason } from './types.ts';

/** Tokens a chat template adds per request and per message (role markers, tool rendering). */
const REQUEST_OVERHEAD_TOKENS = 64;
const MESSAGE_OVERHEAD_TOKENS = 8;
/** Evidence items and characters of each quoted in a partial answer. */
const PARTIAL_EVIDENCE_ITEMS = 8;
const PARTIAL_EVIDENCE_CHARS = 240;
/** Characters of the model's last words quoted in a partial answer. */
const PARTIAL_WORDS_CHARS = 2_000;

/** What the loop needs from the provider that runs it. */
export interface LoopOptions {
  transport: ChatTransport;
  provider: string;
  model: string;
  price: ModelPrice;
  /** The provider's own cap on output tokens per call. */
  maxOutputTokens: number;
}

/**
 * An upper bound of the prompt's tokens: byte-level BPE and byte-fallback tokenizers never make
 * more tokens than UTF-8 bytes, plus the template's special tokens.
 */
function bytesBound(messages: readonly ChatMessage[]): number {
  let bytes = 0;
  for (const m of messages) bytes += Buffer.byteLength(JSON.stringify(m)) + MESSAGE_OVERHEAD_TOKENS;
  return bytes;
}
const TOOLS_BOUND = Buffer.byteLength(JSON.stringify(TOOL_SPECS)) + REQUEST_OVERHEAD_TOKENS;

/** Answers `request` with `options.transport`; only a caller's abort or a bug throws. */
export async function runAgentLoop(options: LoopOptions, request: AnswerRequest): Promise<Answer> {
  const meter = new BudgetMeter(request.budget, options.price);
  const { timer, signal } = answerSignal(request.budget.maxWallMs, request.signal);

  const finish = (stop: StopReason, text: string, citations: Citation[]): Answer => ({
    text,
    citations,
    mode: 'model',
    model: options.model,
    provider: options.provider,
    stop,
    partial: stop !== 'completed',
    usage: meter.usage,
  });

  let toolbox: Toolbox | undefined;
  let lastWords = '';
  const stopped = (stop: BudgetStop | 'error', why?: string): Answer => {
    const names = toolbox?.names ?? new Set<string>();
    const reason = stop === 'error' ? (why ?? 'the model provider failed') : `${describeStop(stop, request.budget)} was exhausted`;
    const lines = [`Partial answer: stopped because ${reason} before the model finished.`];
    const said = filterCitations(lastWords, names);
    if (said.text) lines.push('', `The model had written: ${said.text.slice(0, PARTIAL_WORDS_CHARS)}`);
    const evidence = (toolbox?.evidence ?? []).filter((e) => names.has(e.name));
    const seen = new Set<string>();
    const found: string[] = [];
    const shown: string[] = [];
    for (const e of evidence) {
      const text = e.text.replace(/\s+/g, ' ').trim().slice(0, PARTIAL_EVIDENCE_CHARS);
      const key = `${e.name}\n${text}`;
      if (!text || seen.has(key)) continue;
      seen.add(key);
      found.push(`- [${e.name}]${e.line === undefined ? '' : ` line ${e.line}`}: ${text}`);
      shown.push(e.name);
      if (found.length === PARTIAL_EVIDENCE_ITEMS) break;
    }
    if (found.length > 0) lines.push('', 'Found so far in the files you can read:', ...found);
    else lines.push('', 'Nothing relevant had been found in the files you can read yet.');
    const cited = [...said.citations.map((c) => c.name), ...shown];
    return finish(stop, lines.join('\n'), [...new Set(cited)].map((name) => ({ name })));
  };
  /** A caller's abort propagates; our own timer becomes the time budget. */
  const onAbort = (err: unknown): Answer => {
    if (request.signal?.aborted) throw request.signal.reason;
    if (timer.aborted) return stopped('budget_time');
    throw err;
  };

  try {
    toolbox = new Toolbox(request.tools, await raceAbort(request.tools.list(), signal));
  } catch (err) {
    return onAbort(err);
  }

  const messages: ChatMessage[] = [
    { role: 'system', content: SYSTEM_PROMPT },
    { role: 'user', content: request.question },
  ];
  let reportedInput: number | undefined;
  let sentCount = 0;

  for (;;) {
    if (signal.aborted) return onAbort(signal.reason);
    // Prompt bound: what the provider counted last time plus what we added since, when its count is
    // of the whole prompt; otherwise (or when smaller) the byte bound of the whole conversation.
    let promptBound = bytesBound(messages) + TOOLS_BOUND;
    if (options.transport.reportsFullPromptTokens && reportedInput !== undefined) {
      promptBound = Math.min(promptBound, reportedInput + bytesBound(messages.slice(sentCount)));
    }
    const plan = meter.planCall(promptBound, options.maxOutputTokens);
    if (!plan.ok) return stopped(plan.stop);

    let result: ChatResult;
    try {
      result = await raceAbort(
        options.transport.complete({ messages, tools: TOOL_SPECS, maxOutputTokens: plan.maxOutputTokens, signal }),
        signal,
      );
    } catch (err) {
      if (signal.aborted) return onAbort(err);
      if (err instanceof ModelError) return stopped('error', `the model provider failed (${err.code}: ${err.message})`);
      throw err;
    }
    // No usage reported: bill the worst case the plan allowed, so the caps still hold.
    const usage = result.usage ?? { inputTokens: promptBound, outputTokens: plan.maxOutputTokens };
    meter.recordCall(usage.inputTokens, usage.outputTokens);
    reportedInput = result.usage?.inputTokens;
    sentCount = messages.length;
    messages.push({ role: 'assistant', content: result.content, toolCalls: result.toolCalls });
    if (result.content.trim()) lastWords = result.content;

    if (result.toolCalls.length === 0) {
      if (result.finish === 'length' && plan.limitedBy) return stopped(plan.limitedBy);
      const answer = filterCitations(result.content, toolbox.names);
      return finish('completed', answer.text || 'The model returned no answer.', answer.citations);
    }

    for (const call of result.toolCalls) {
      if (!meter.canCallTool()) return stopped('budget_tool_calls');
      meter.recordToolCall();
      let content: string;
      try {
        content = (await raceAbort(toolbox.execute(call), signal)).content;
      } catch (err) {
        return onAbort(err);
      }
      messages.push({ role: 'tool', toolCallId: call.id, name: call.name, content });
    }
  }
}
