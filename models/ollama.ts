/**
 * Ollama's native chat API with tool calling, non-streaming.
 * https://github.com/ollama/ollama/blob/main/docs/api.md#generate-a-chat-completion
 */
import { z } from 'zod';
import { wireTools, type ChatCall, type ChatMessage, type ChatResult, type ChatTransport, type FinishReason } from './chat.ts';
import { postJson } from './http.ts';
import { runAgentLoop } from './loop.ts';
import { type ModelPrice, priceOf } from './prices.ts';
import type { Answer, AnswerRequest, ModelProvider } from './types.ts';
import { parseConfig } from '../core/config.ts';

/** Options of {@link OllamaProvider}. */
export interface OllamaProviderOptions {
  /** Server root; default http://127.0.0.1:11434. */
  baseUrl?: string;
  /** Model tag, e.g. 'llama3.1' or 'llama3.1:8b'. */
  model: string;
  /** Sent as `Authorization: Bearer` when the server sits behind an authenticating proxy. */
  apiKey?: string;
  /** Jurisdiction where the server runs; default 'local'. */
  region?: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Most output tokens per call (`options.num_predict`; budgets may lower it); default 1024. */
  maxOutputTokens?: number;
  /** USD per 1M tokens; default 0 (self-hosted) unless prices.ts lists the model. */
  price?: ModelPrice;
  /** Name reported in answers; default 'ollama'. */
  name?: string;
}

const OptionsSchema = z.object({
  baseUrl: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:11434'),
  model: z.string().min(1),
  apiKey: z.string().min(1).optional(),
  region: z.string().min(1).default('local'),
  headers: z.record(z.string(), z.string()).default({}),
  maxOutputTokens: z.number().int().min(16).max(200_000).default(1024),
  price: z.object({ inputPerMTok: z.number(), outputPerMTok: z.number() }).optional(),
  name: z.string().min(1).default('ollama'),
});

/** The Ollama server runs on hardware paid for elsewhere. */
const FREE: ModelPrice = { inputPerMTok: 0, outputPerMTok: 0 };

/** https://github.com/ollama/ollama/blob/main/docs/api.md#response-19 (non-streaming chat). */
const ChatResponseSchema = z.object({
  message: z.object({
    content: z.string().default(''),
    tool_calls: z
      .array(
        z.object({
          function: z.object({
            name: z.string(),
            // An object per the API; a string is kept as the model's raw JSON text.
            arguments: z.union([z.record(z.string(), z.unknown()), z.string()]).optional(),
          }),
        }),
      )
      .nullish(),
  }),
  done: z.boolean(),
  done_reason: z.string().nullish(),
  prompt_eval_count: z.number().int().nonnegative().optional(),
  eval_count: z.number().int().nonnegative().optional(),
});

/** Ollama wants arguments back as an object; one we could not parse is sent back empty. */
function argumentsObject(json: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(json);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? { ...value } : {};
  } catch {
    return {};
  }
}

function toWire(m: ChatMessage): Record<string, unknown> {
  switch (m.role) {
    case 'system':
    case 'user':
      return { role: m.role, content: m.content };
    case 'assistant':
      return {
        role: 'assistant',
        content: m.content,
        ...(m.toolCalls.length === 0
          ? {}
          : { tool_calls: m.toolCalls.map((c) => ({ function: { name: c.name, arguments: argumentsObject(c.argumentsJson) } })) }),
      };
    case 'tool':
      return { role: 'tool', content: m.content, tool_name: m.name };
  }
}

function finishReason(raw: string | null | undefined, hasCalls: boolean): FinishReason {
  if (raw === 'length') return 'length';
  if (hasCalls) return 'tool_calls';
  return raw === 'stop' ? 'stop' : 'other';
}

/** A model served by Ollama, answering through the agent loop. */
export class OllamaProvider implements ModelProvider, ChatTransport {
  readonly name: string;
  readonly model: string;
  readonly region: string;
  readonly reportsFullPromptTokens = false;
  /** The endpoint every call POSTs to. */
  readonly url: string;
  readonly #options: z.output<typeof OptionsSchema>;
  readonly #price: ModelPrice;
  #turn = 0;

  /** Validates the options; throws CONFIG_INVALID. */
  constructor(options: OllamaProviderOptions) {
    const o = parseConfig(OptionsSchema, options, 'Ollama provider options');
    this.#options = o;
    this.#price = o.price ? priceOf(o.model, o.price) : FREE;
    this.model = o.model;
    this.region = o.region;
    this.name = o.name;
    this.url = `${o.baseUrl.replace(/\/+$/, '')}/api/chat`;
  }

  answer(request: AnswerRequest): Promise<Answer> {
    return runAgentLoop(
      { transport: this, provider: this.name, model: this.model, price: this.#price, maxOutputTokens: this.#options.maxOutputTokens },
      request,
    );
  }

  /** One /api/chat call. */
  async complete(call: ChatCall): Promise<ChatResult> {
    const o = this.#options;
    const headers: Record<string, string> = { ...o.headers };
    if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
    const body = {
      model: o.model,
      messages: call.messages.map(toWire),
      tools: wireTools(call.tools),
      stream: false,
      options: { num_predict: call.maxOutputTokens },
    };
    const res = await postJson(this.url, headers, body, ChatResponseSchema, call.signal, `${this.name} /api/chat`);
    // Ollama's calls carry no ids; ours only pair each result with its call inside one turn.
    const turn = this.#turn++;
    const calls = res.message.tool_calls ?? [];
    const usage =
      res.prompt_eval_count === undefined || res.eval_count === undefined
        ? undefined
        : { inputTokens: res.prompt_eval_count, outputTokens: res.eval_count };
    return {
      content: res.message.content,
      toolCalls: calls.map((c, i) => ({
        id: `ollama_${turn}_${i}`,
        name: c.function.name,
        argumentsJson:
          typeof c.function.arguments === 'string' ? c.function.arguments : JSON.stringify(c.function.arguments ?? {}),
      })),
      finish: finishReason(res.done_reason, calls.length > 0),
      usage,
    };
  }
}
