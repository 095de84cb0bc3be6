import type { SandboxTools } from '../sandbox/tools.ts';

/** Per-query limits; exhausting any one stops the loop and the answer says which. */
export interface Budget {
  /** Maximum spend in US dollars (priced from models/prices.ts). */
  maxUsd: number;
  /** Maximum input + output tokens. */
  maxTokens: number;
  /** Maximum tool calls. */
  maxToolCalls: number;
  /** Maximum wall time, in milliseconds. */
  maxWallMs: number;
}

export type StopReason = 'completed' | 'budget_usd' | 'budget_tokens' | 'budget_tool_calls' | 'budget_time' | 'error';

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  usd: number;
  toolCalls: number;
}

/** A citation always names a file of the sandbox manifest; the caller maps it to its document. */
export interface Citation {
  name: string;
  quote?: string;
}

export interface Answer {
  text: string;
  citations: Citation[];
  /** 'extractive' answers are assembled from the files without a language model, and say so. */
  mode: 'extractive' | 'model';
  model: string;
  provider: string;
  stop: StopReason;
  /** True when a budget stopped the loop before the model finished. */
  partial: boolean;
  usage: Usage;
}

/** What a provider is asked to do: answer `question` using only `tools`, within `budget`. */
export interface AnswerRequest {
  question: string;
  tools: SandboxTools;
  budget: Budget;
  signal?: AbortSignal;
}

/** A model provider. `region` lets a later issue pin processing to a jurisdiction (e.g. 'eu'). */
export interface ModelProvider {
  readonly name: string;
  readonly model: string;
  readonly region: string;
  answer(request: AnswerRequest): Promise<Answer>;
}
