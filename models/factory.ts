/**
 * Builds the configured provider. Without configuration Astry answers extractively (offline, no
 * model); a chat provider is used only when an operator configures one, with a known price.
 */
import { z } from 'zod';
import { AstryError } from '../core/errors.ts';
import { ExtractiveProvider } from './extractive.ts';
import { OllamaProvider } from './ollama.ts';
import { OpenAIProvider } from './openai.ts';
import type { ModelProvider } from './types.ts';

const Price = z.object({ inputPerMTok: z.number(), outputPerMTok: z.number() });
const Headers = z.record(z.string(), z.string());

/** Provider configuration, e.g. parsed from a JSON setting or a connection row. */
export const ProviderConfigSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('extractive'),
    region: z.string().min(1).optional(),
    maxFiles: z.number().int().min(1).optional(),
    maxPassages: z.number().int().min(1).optional(),
  }),
  z.object({
    kind: z.literal('openai'),
    baseUrl: z.string(),
    apiKey: z.string().optional(),
    model: z.string(),
    region: z.string().optional(),
    headers: Headers.optional(),
    maxOutputTokens: z.number().optional(),
    price: Price.optional(),
    azure: z.object({ deployment: z.string(), apiVersion: z.string() }).optional(),
    name: z.string().optional(),
    maxTokensField: z.enum(['max_tokens', 'max_completion_tokens']).optional(),
    temperature: z.number().optional(),
  }),
  z.object({
    kind: z.literal('ollama'),
    baseUrl: z.string().optional(),
    apiKey: z.string().optional(),
    model: z.string(),
    region: z.string().optional(),
    headers: Headers.optional(),
    maxOutputTokens: z.number().optional(),
    price: Price.optional(),
    name: z.string().optional(),
  }),
]);
export type ProviderConfig = z.infer<typeof ProviderConfigSchema>;

/** The provider `config` describes (default: extractive); throws CONFIG_INVALID for a bad or unpriced one. */
export function createProvider(config: unknown = { kind: 'extractive' }): ModelProvider {
  const parsed = ProviderConfigSchema.safeParse(config);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; ');
    throw new AstryError('CONFIG_INVALID', `invalid model provider configuration: ${problems}`);
  }
  const c = parsed.data;
  switch (c.kind) {
    case 'extractive':
      return new ExtractiveProvider(c);
    case 'openai':
      return new OpenAIProvider(c);
    case 'ollama':
      return new OllamaProvider(c);
  }
}
