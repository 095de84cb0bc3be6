/**
 * What each model costs, in US dollars per million tokens, so the loop can cap spend before a call.
 * Fail closed: a model with no listed or configured price is refused, never assumed free.
 * Sources: the vendors' pricing pages (openai.com/api/pricing, anthropic.com/pricing, openrouter.ai/models).
 */
import { AstryError } from '../core/errors.ts';

/** Price of one model, in USD per 1,000,000 tokens. */
export interface ModelPrice {
  /** USD per 1M input (prompt) tokens. */
  inputPerMTok: number;
  /** USD per 1M output (completion) tokens. */
  outputPerMTok: number;
}

/** A self-hosted model: the hardware is paid for elsewhere, so a call costs nothing here. */
const SELF_HOSTED: ModelPrice = { inputPerMTok: 0, outputPerMTok: 0 };

/**
 * Known models by the id the provider expects. Ids are matched exactly: OpenRouter's lower-case
 * `meta-llama/llama-3.1-8b-instruct` (paid, hosted) is deliberately NOT the vLLM id below.
 */
export const PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze({
  // OpenAI (direct, Azure deployments of the same model, and OpenRouter's `openai/` ids)
  'gpt-4o-mini': { inputPerMTok: 0.15, outputPerMTok: 0.6 },
  'openai/gpt-4o-mini': { inputPerMTok: 0.15, outputPerMTok: 0.6 },
  'gpt-4o': { inputPerMTok: 2.5, outputPerMTok: 10 },
  'openai/gpt-4o': { inputPerMTok: 2.5, outputPerMTok: 10 },
  'gpt-4.1-mini': { inputPerMTok: 0.4, outputPerMTok: 1.6 },
  'openai/gpt-4.1-mini': { inputPerMTok: 0.4, outputPerMTok: 1.6 },
  'gpt-4.1-nano': { inputPerMTok: 0.1, outputPerMTok: 0.4 },
  'openai/gpt-4.1-nano': { inputPerMTok: 0.1, outputPerMTok: 0.4 },
  // Anthropic through OpenRouter
  'anthropic/claude-3.5-haiku': { inputPerMTok: 0.8, outputPerMTok: 4 },
  'anthropic/claude-3.5-sonnet': { inputPerMTok: 3, outputPerMTok: 15 },
  // Self-hosted Llama 3.1: Ollama tags and vLLM's default served name (the Hugging Face repo id)
  'llama3.1': SELF_HOSTED,
  'llama3.1:8b': SELF_HOSTED,
  'llama3.1:70b': SELF_HOSTED,
  'meta-llama/Llama-3.1-8B-Instruct': SELF_HOSTED,
  'meta-llama/Llama-3.1-70B-Instruct': SELF_HOSTED,
});

function validPrice(price: ModelPrice): boolean {
  const ok = (n: number): boolean => Number.isFinite(n) && n >= 0 && n <= 1_000;
  return ok(price.inputPerMTok) && ok(price.outputPerMTok);
}

/**
 * The price of `model`: `configured` when given (an operator's own contract or deployment),
 * else the table. Throws CONFIG_INVALID for an unknown model, so a budget is never unenforceable.
 */
export function priceOf(model: string, configured?: ModelPrice): ModelPrice {
  const price = configured ?? (Object.hasOwn(PRICES, model) ? PRICES[model] : undefined);
  if (price === undefined) {
    throw new AstryError(
      'CONFIG_INVALID',
      `no price known for model "${model}": configure one (USD per 1M input/output tokens) before using it`,
    );
  }
  if (!validPrice(price)) {
    throw new AstryError('CONFIG_INVALID', `price of model "${model}" must be finite, >= 0 and <= 1000 USD per 1M tokens`);
  }
  return price;
}

/** Picodollars (1e-12 USD) per token: integers, so sums and caps are exact. */
export function picoPerToken(perMTok: number): number {
  return Math.round(perMTok * 1e6);
}

/** The cost of a call in USD. */
export function costUsd(price: ModelPrice, inputTokens: number, outputTokens: number): number {
  return (inputTokens * picoPerToken(price.inputPerMTok) + outputTokens * picoPerToken(price.outputPerMTok)) / 1e12;
}
