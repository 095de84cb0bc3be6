/**
 * The provider-neutral conversation the agent loop keeps, and the one call a chat provider makes.
 * Each protocol (OpenAI Chat Completions, Ollama /api/chat) translates to and from these types.
 */

/** One tool call the model asked for, exactly as it asked (hostile until validated). */
export interface ToolCall {
  /** The provider's call id, or one we made up when the protocol has none. */
  id: string;
  name: string;
  /** The arguments as JSON text; may be malformed. */
  argumentsJson: string;
}

export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls: ToolCall[] }
  | { role: 'tool'; toolCallId: string; name: string; content: string };

/** A tool as offered to the model: a JSON Schema of its arguments. */
export interface ToolSpec {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

/** One model call. */
export interface ChatCall {
  messages: readonly ChatMessage[];
  tools: readonly ToolSpec[];
  /** Most output tokens the model may produce: the loop derives it from the budgets. */
  maxOutputTokens: number;
  signal: AbortSignal;
}

/** Why the model stopped generating: 'length' means `maxOutputTokens` cut it off. */
export type FinishReason = 'stop' | 'tool_calls' | 'length' | 'other';

export interface ChatResult {
  content: string;
  toolCalls: ToolCall[];
  finish: FinishReason;
  /** Token counts the provider reported; undefined when it reported none (billed as worst case). */
  usage: { inputTokens: number; outputTokens: number } | undefined;
}

/** What a chat provider gives the loop. */
export interface ChatTransport {
  /**
   * True when the reported input tokens count the whole prompt (OpenAI-compatible servers). Ollama
   * reports only the tokens it had to evaluate (its KV cache hides the rest), so the loop cannot
   * build its next estimate on them.
   */
  readonly reportsFullPromptTokens: boolean;
  complete(call: ChatCall): Promise<ChatResult>;
}

/** Tool specs in the `tools` shape both Chat Completions and Ollama's /api/chat accept. */
export function wireTools(tools: readonly ToolSpec[]): { type: 'function'; function: { name: string; description: string; parameters: unknown } }[] {
  return tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }));
}
