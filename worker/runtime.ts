import { AuditLog } from '../audit/log.ts';
import { LocalEd25519Signer } from '../audit/signer.ts';
import type { VerifyOptions } from '../audit/verify.ts';
import type pg from 'pg';
import type { Env } from '../core/env.ts';
import { createPool } from '../db/pool.ts';
import { createProvider } from '../models/factory.ts';
import type { ModelProvider } from '../models/types.ts';
import { LocalEmbedder } from '../pipeline/embed.ts';
import { LocalKeyFileProvider } from '../vault/key-provider.ts';
import type { AskDeps } from './ask.ts';
import { claimSandboxRoot } from './sandbox-root.ts';

/** The configured model provider: extractive unless an operator sets ASTRY_MODEL_PROVIDER. */
export function providerFromEnv(config: Env): ModelProvider {
  if (config.ASTRY_MODEL_PROVIDER === 'extractive') return createProvider({ kind: 'extractive', region: config.ASTRY_MODEL_REGION });
  return createProvider({
    kind: config.ASTRY_MODEL_PROVIDER,
    baseUrl: config.ASTRY_MODEL_BASE_URL,
    apiKey: config.ASTRY_MODEL_API_KEY,
    model: config.ASTRY_MODEL_NAME,
    region: config.ASTRY_MODEL_REGION,
  });
}

/** The audit log as configured: spool and checkpoint directories, Ed25519 signing key. */
export async function auditFromEnv(config: Env, pool: pg.Pool): Promise<AuditLog> {
  const signer = await LocalEd25519Signer.open(config.ASTRY_AUDIT_SIGNING_KEY);
  return new AuditLog({ pool, spoolDir: config.ASTRY_AUDIT_SPOOL_DIR, checkpointDir: config.ASTRY_AUDIT_CHECKPOINT_DIR, signer });
}

/**
 * What the audit chain is verified against, for `astry audit verify` and GET /v1/admin/audit/verify:
 * the public half of the configured signing key and the checkpoint files kept outside the database.
 */
export async function auditVerifyOptionsFromEnv(config: Env): Promise<VerifyOptions> {
  const signer = await LocalEd25519Signer.open(config.ASTRY_AUDIT_SIGNING_KEY);
  return { publicKey: signer.publicKey, checkpointDir: config.ASTRY_AUDIT_CHECKPOINT_DIR };
}

/** The per-query budget and per-user daily cap the environment sets (ASTRY_BUDGET_*). */
export function budgetFromEnv(config: Env): Pick<AskDeps, 'budget' | 'maxUsdPerUserPerDay'> {
  return {
    budget: {
      maxUsd: config.ASTRY_BUDGET_USD,
      maxTokens: config.ASTRY_BUDGET_TOKENS,
      maxToolCalls: config.ASTRY_BUDGET_TOOL_CALLS,
      maxWallMs: config.ASTRY_BUDGET_WALL_MS,
    },
    maxUsdPerUserPerDay: config.ASTRY_BUDGET_USD_PER_USER_DAY,
  };
}

/** Query worker dependencies from the environment; the sandbox root sweeps crashed workers' leftovers. */
export async function askDepsFromEnv(config: Env): Promise<AskDeps> {
  const pool = createPool(config.DATABASE_URL);
  const [keys, embedder, audit, sandbox] = await Promise.all([
    LocalKeyFileProvider.open(config.ASTRY_KEK_FILE),
    LocalEmbedder.load({ modelDir: config.ASTRY_MODEL_DIR, model: config.ASTRY_EMBED_MODEL, batchSize: config.ASTRY_EMBED_BATCH }),
    auditFromEnv(config, pool),
    claimSandboxRoot(config.ASTRY_SANDBOX_DIR),
  ]);
  return {
    pool, keys, embedder, audit,
    provider: providerFromEnv(config),
    sandboxRoot: sandbox.root,
    ...budgetFromEnv(config),
  };
}
