/**
 * Budget accounting for one answer: spend, tokens, tool calls and wall time. Money is kept in
 * integer picodollars so a cap is exact. Before each model call the meter sets the output cap so
 * that the worst case (an upper bound of the prompt plus every allowed output token) stays within
 * what is left: spend can reach a cap but not pass it.
 */
import { AstryError } from '../core/errors.ts';
import { type ModelPrice, picoPerToken } from './prices.ts';
import type { Budget, StopReason, Usage } from './types.ts';

/** A call allowed fewer output tokens than this is not worth making: the budget is spent. */
export const MIN_OUTPUT_TOKENS = 16;

export type BudgetStop = Exclude<StopReason, 'completed' | 'error'>;

/** The verdict before a model call. */
export type CallPlan =
  | { ok: true; maxOutputTokens: number; limitedBy: BudgetStop | undefined }
  | { ok: false; stop: BudgetStop };

/** Throws CONFIG_INVALID unless every limit is a finite number >= 0. */
export function validateBudget(budget: Budget): void {
  for (const [key, value] of Object.entries(budget)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new AstryError('CONFIG_INVALID', `budget ${key} must be a finite number >= 0, got ${String(value)}`);
    }
  }
}

/** Human words for the budget that stopped a loop, with its limit. */
export function describeStop(stop: BudgetStop, budget: Budget): string {
  switch (stop) {
    case 'budget_usd':
      return `the spending budget (US$${budget.maxUsd})`;
    case 'budget_tokens':
      return `the token budget (${budget.maxTokens} tokens)`;
    case 'budget_tool_calls':
      return `the tool-call budget (${budget.maxToolCalls} calls)`;
    case 'budget_time':
      return `the time budget (${budget.maxWallMs} ms)`;
  }
}

export class BudgetMeter {
  readonly budget: Budget;
  readonly #inPico: number;
  readonly #outPico: number;
  readonly #capPico: number;
  #spentPico = 0;
  #inputTokens = 0;
  #outputTokens = 0;
  #toolCalls = 0;

  constructor(budget: Budget, price: ModelPrice) {
    validateBudget(budget);
    this.budget = budget;
    this.#inPico = picoPerToken(price.inputPerMTok);
    this.#outPico = picoPerToken(price.outputPerMTok);
    this.#capPico = Math.floor(budget.maxUsd * 1e12);
  }

  get usage(): Usage {
    return {
      inputTokens: this.#inputTokens,
      outputTokens: this.#outputTokens,
      usd: this.#spentPico / 1e12,
      toolCalls: this.#toolCalls,
    };
  }

  /**
   * The output cap for a call whose prompt is at most `promptTokensBound` tokens, or the budget that
   * forbids the call. `providerMax` is the provider's own output limit.
   */
  planCall(promptTokensBound: number, providerMax: number): CallPlan {
    const tokenRoom = this.budget.maxTokens - this.#inputTokens - this.#outputTokens - promptTokensBound;
    const usdRoom = this.#outPico === 0
      ? Number.POSITIVE_INFINITY
      : Math.floor((this.#capPico - this.#spentPico - promptTokensBound * this.#inPico) / this.#outPico);
    if (usdRoom < MIN_OUTPUT_TOKENS && usdRoom <= tokenRoom) return { ok: false, stop: 'budget_usd' };
    if (tokenRoom < MIN_OUTPUT_TOKENS) return { ok: false, stop: 'budget_tokens' };
    if (usdRoom < MIN_OUTPUT_TOKENS) return { ok: false, stop: 'budget_usd' };
    const maxOutputTokens = Math.min(providerMax, tokenRoom, usdRoom);
    let limitedBy: BudgetStop | undefined;
    if (maxOutputTokens < providerMax) limitedBy = usdRoom <= tokenRoom ? 'budget_usd' : 'budget_tokens';
    return { ok: true, maxOutputTokens, limitedBy };
  }

  /** Books one model call. */
  recordCall(inputTokens: number, outputTokens: number): void {
    this.#inputTokens += inputTokens;
    this.#outputTokens += outputTokens;
    this.#spentPico += inputTokens * this.#inPico + outputTokens * this.#outPico;
  }

  /** True when one more tool call is within the budget. */
  canCallTool(): boolean {
    return this.#toolCalls < this.budget.maxToolCalls;
  }

  recordToolCall(): void {
    this.#toolCalls += 1;
  }
}
