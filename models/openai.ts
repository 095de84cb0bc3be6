/**
 * OpenAI-compatible Chat Completions with tool calling: OpenAI, OpenRouter, vLLM and Azure OpenAI.
 * https://platform.openai.com/docs/api-reference/chat/create
 * Azure: https://learn.microsoft.com/azure/ai-services/openai/reference (deployment URL, api-key header).
 */
import { z } from 'zod';
import { wireTools, type ChatCall, type ChatMessage, type ChatResult, type ChatTransport, type FinishReason } from './chat.ts';
import { postJson } from './http.ts';
import { runAgentLoop } from './loop.ts';
import { type ModelPrice, priceOf } from './prices.ts';
import type { Answer, AnswerRequest, ModelProvider } from './types.ts';
import { parseConfig } from '../core/config.ts';

/** Options of {@link OpenAIProvider}. */
export interface OpenAIProviderOptions {
  /**
   * API root: https://api.openai.com/v1, https://openrouter.ai/api/v1, http://127.0.0.1:8000/v1
   * (vLLM); for Azure the resource endpoint, https://<resource>.openai.azure.com.
   */
  baseUrl: string;
  /** Sent as `Authorization: Bearer` (Azure: `api-key`); omit for a server without auth (local vLLM). */
  apiKey?: string;
  /** Model id sent in the body and priced; for Azure, the model behind the deployment (e.g. gpt-4o-mini). */
  model: string;
  /** Jurisdiction where the endpoint processes data, e.g. 'us' or 'eu'; default 'unspecified'. */
  region?: string;
  /** Extra request headers, e.g. OpenRouter's `HTTP-Referer` and `X-Title`. */
  headers?: Record<string, string>;
  /** Most output tokens per call (budgets may lower it); default 1024. */
  maxOutputTokens?: number;
  /** USD per 1M tokens; default from models/prices.ts, and an unknown model is refused. */
  price?: ModelPrice;
  /** Azure OpenAI: `{baseUrl}/openai/deployments/{deployment}/chat/completions?api-version={apiVersion}`. */
  azure?: { deployment: string; apiVersion: string };
  /** Name reported in answers; default 'azure-openai' with `azure`, else 'openai-compatible'. */
  name?: string;
  /** Body field of the output cap: reasoning models want 'max_completion_tokens'; default 'max_tokens'. */
  maxTokensField?: 'max_tokens' | 'max_completion_tokens';
  /** Sampling temperature; default: the server's (some models refuse any other). */
  temperature?: number;
}

const OptionsSchema = z.object({
  baseUrl: z.url({ protocol: /^https?$/ }),
  apiKey: z.string().min(1).optional(),
  model: z.string().min(1),
  region: z.string().min(1).default('unspecified'),
  headers: z.record(z.string(), z.string()).default({}),
  maxOutputTokens: z.number().int().min(16).max(200_000).default(1024),
  price: z.object({ inputPerMTok: z.number(), outputPerMTok: z.number() }).optional(),
  azure: z.object({ deployment: z.string().min(1), apiVersion: z.string().min(1) }).optional(),
  name: z.string().min(1).optional(),
  maxTokensField: z.enum(['max_tokens', 'max_completion_tokens']).default('max_tokens'),
  temperature: z.number().min(0).max(2).optional(),
});

/** https://platform.openai.com/docs/api-reference/chat/object */
const CompletionSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({
          content: z.string().nullish(),
          refusal: z.string().nullish(),
          tool_calls: z
            .array(
              z.object({
                id: z.string().nullish(),
                function: z.object({ name: z.string(), arguments: z.string().nullish() }),
              }),
            )
            .nullish(),
        }),
        finish_reason: z.string().nullish(),
      }),
    )
    .min(1),
  usage: z
    .object({ prompt_tokens: z.number().int().nonnegative(), completion_tokens: z.number().int().nonnegative() })
    .nullish(),
});

function toWire(m: ChatMessage): Record<string, unknown> {
  switch (m.role) {
    case 'system':
    case 'user':
      return { role: m.role, content: m.content };
    case 'assistant':
      return m.toolCalls.length === 0
        ? { role: 'assistant', content: m.content }
        : {
            role: 'assistant',
            content: m.content || null,
            tool_calls: m.toolCalls.map((c) => ({
              id: c.id,
              type: 'function',
              function: { name: c.name, arguments: c.argumentsJson },
            })),
          };
    case 'tool':
      return { role: 'tool', tool_call_id: m.toolCallId, content: m.content };
  }
}

function finishReason(raw: string | null | undefined): FinishReason {
  if (raw === 'stop' || raw === 'tool_calls' || raw === 'length') return raw;
  return 'other';
}

/** A model behind an OpenAI-compatible Chat Completions endpoint, answering through the agent loop. */
export class OpenAIProvider implements ModelProvider, ChatTransport {
  readonly name: string;
  readonly model: string;
  readonly region: string;
  readonly reportsFullPromptTokens = true;
  /** The endpoint every call POSTs to. */
  readonly url: string;
  readonly #options: z.output<typeof OptionsSchema>;
  readonly #price: ModelPrice;

  /** Validates the options and the model's price; throws CONFIG_INVALID. */
  constructor(options: OpenAIProviderOptions) {
    const o = parseConfig(OptionsSchema, options, 'OpenAI-compatible provider options');
    this.#options = o;
    this.#price = priceOf(o.model, o.price);
    this.model = o.model;
    this.region = o.region;
    this.name = o.name ?? (o.azure ? 'azure-openai' : 'openai-compatible');
    const root = o.baseUrl.replace(/\/+$/, '');
    this.url = o.azure
      ? `${root}/openai/deployments/${encodeURIComponent(o.azure.deployment)}/chat/completions?api-version=${encodeURIComponent(o.azure.apiVersion)}`
      : `${root}/chat/completions`;
  }

  answer(request: AnswerRequest): Promise<Answer> {
    return runAgentLoop(
      { transport: this, provider: this.name, model: this.model, price: this.#price, maxOutputTokens: this.#options.maxOutputTokens },
      request,
    );
  }

  /** One Chat Completions call. */
  async complete(call: ChatCall): Promise<ChatResult> {
    const o = this.#options;
    const headers: Record<string, string> = { ...o.headers };
    if (o.apiKey) {
      if (o.azure) headers['api-key'] = o.apiKey;
      else headers.authorization = `Bearer ${o.apiKey}`;
    }
    const body = {
      model: o.model,
      messages: call.messages.map(toWire),
      tools: wireTools(call.tools),
      tool_choice: 'auto',
      [o.maxTokensField]: call.maxOutputTokens,
      stream: false,
      ...(o.temperature === undefined ? {} : { temperature: o.temperature }),
    };
    const res = await postJson(this.url, headers, body, CompletionSchema, call.signal, `${this.name} chat/completions`);
    // Only the first choice is used: we never ask for n > 1.
    const [choice] = res.choices;
    if (!choice) throw new Error('unreachable: choices has at least one element');
    const calls = choice.message.tool_calls ?? [];
    return {
      content: choice.message.content ?? choice.message.refusal ?? '',
      toolCalls: calls.map((c, i) => ({
        id: c.id || `call_${i}`,
        name: c.function.name,
        argumentsJson: c.function.arguments ?? '',
      })),
      finish: finishReason(choice.finish_reason),
      usage: res.usage ? { inputTokens: res.usage.prompt_tokens, outputTokens: res.usage.completion_tokens } : undefined,
    };
  }
}
