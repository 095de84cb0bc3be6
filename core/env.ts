import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { parseConfig } from './config.ts';

const home = homedir();

/** Every setting Astry reads from the environment, with defaults that work on a machine set up by scripts/setup.sh. */
const EnvSchema = z.object({
  /** Postgres 15+ with pgvector 0.8, as the application role (no UPDATE/DELETE on the audit log). */
  DATABASE_URL: z.string().url().default('postgres://astry_app:astry_app@127.0.0.1:5432/astry'),
  /** The same database as the schema owner: migrations, and creating test databases. */
  ASTRY_MIGRATION_DATABASE_URL: z.string().url().default('postgres://astry:astry@127.0.0.1:5432/astry'),
  /** Redis 7 (BullMQ queues). */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Temporal frontend, host:port. */
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /** Temporal task queue for sync workflows; tests use their own. */
  ASTRY_TASK_QUEUE: z.string().min(1).default('astry-sync'),
  /** Directory holding <model>/config.json, tokenizer.json and onnx/model_quantized.onnx. */
  ASTRY_MODEL_DIR: z.string().min(1).default(join(home, '.cache', 'astry', 'models')),
  ASTRY_EMBED_MODEL: z.string().min(1).default('all-MiniLM-L6-v2'),
  /** Texts per embedding batch. */
  ASTRY_EMBED_BATCH: z.coerce.number().int().min(1).max(1024).default(32),
  /** Key-encryption key file (32 random bytes, created 0600 on first use). */
  ASTRY_KEK_FILE: z.string().min(1).default(join(home, '.local', 'state', 'astry', 'kek.key')),
  /** Largest source file Astry downloads and extracts, in bytes (default 20 MiB). */
  ASTRY_MAX_FILE_BYTES: z.coerce.number().int().min(1).default(20 * 1024 * 1024),
  /** Interval of each connection's sync schedule, in seconds (default 900 = 15 min). */
  ASTRY_SYNC_INTERVAL_SECONDS: z.coerce.number().int().min(1).default(900),
  /** Canonical workspace name used by the CLI, the API and the query worker. */
  ASTRY_WORKSPACE: z.string().min(1).default('default'),

  /** OIDC: exact issuer, the API's audience, and the IdP's JWKS (default: <issuer>/jwks). */
  ASTRY_OIDC_ISSUER: z.string().url().default('http://127.0.0.1:3901'),
  ASTRY_OIDC_AUDIENCE: z.string().min(1).default('https://astry.local/api'),
  ASTRY_OIDC_JWKS_URL: z.string().url().optional(),
  /**
   * Access-token claim holding the caller's admin roles for /v1/admin (`astry.admin`, `astry.compliance`):
   * `roles` for Entra app roles, `groups` for an Okta groups claim. An array of strings, or one string.
   */
  ASTRY_ADMIN_ROLES_CLAIM: z.string().min(1).default('roles'),
  /** HTTP API listen address. */
  ASTRY_API_HOST: z.string().min(1).default('127.0.0.1'),
  ASTRY_API_PORT: z.coerce.number().int().min(0).max(65535).default(3902),
  /** Questions answered at once per query worker (default 2). */
  ASTRY_QUERY_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  /** How the model's tools are confined: bubblewrap, Landlock, or the first whose self-test passes (docs/sandbox.md). */
  ASTRY_CONFINEMENT: z.enum(['auto', 'bwrap', 'landlock']).default('auto'),

  /** Model provider: extractive (offline default, no language model), openai (OpenAI-compatible: OpenRouter, vLLM, Azure) or ollama. */
  ASTRY_MODEL_PROVIDER: z.enum(['extractive', 'openai', 'ollama']).default('extractive'),
  ASTRY_MODEL_BASE_URL: z.string().url().optional(),
  ASTRY_MODEL_API_KEY: z.string().optional(),
  ASTRY_MODEL_NAME: z.string().optional(),
  /** Where the model provider processes data, e.g. 'eu' or 'us' (declared, for region pinning). */
  ASTRY_MODEL_REGION: z.string().min(1).default('local'),

  /** Per-query budgets: USD, tokens, tool calls, wall time (ms); per-user daily USD cap. */
  ASTRY_BUDGET_USD: z.coerce.number().min(0).default(0.05),
  ASTRY_BUDGET_TOKENS: z.coerce.number().int().min(1).default(50_000),
  ASTRY_BUDGET_TOOL_CALLS: z.coerce.number().int().min(1).default(16),
  ASTRY_BUDGET_WALL_MS: z.coerce.number().int().min(100).default(60_000),
  ASTRY_BUDGET_USD_PER_USER_DAY: z.coerce.number().min(0).default(2),

  /** Per-request sandboxes live under this directory (each worker claims worker-<pid>). */
  ASTRY_SANDBOX_DIR: z.string().min(1).default(join(home, '.local', 'state', 'astry', 'sandboxes')),
  /** Audit: local spool used while Postgres is unreachable, signed checkpoints outside the database, signing key. */
  ASTRY_AUDIT_SPOOL_DIR: z.string().min(1).default(join(home, '.local', 'state', 'astry', 'audit-spool')),
  ASTRY_AUDIT_CHECKPOINT_DIR: z.string().min(1).default(join(home, '.local', 'state', 'astry', 'audit-checkpoints')),
  ASTRY_AUDIT_SIGNING_KEY: z.string().min(1).default(join(home, '.local', 'state', 'astry', 'audit-ed25519.pem')),
});

export type Env = z.infer<typeof EnvSchema>;

/** Parses an environment record; throws CONFIG_INVALID naming each bad variable. */
export function parseEnv(source: Record<string, string | undefined>): Env {
  return parseConfig(EnvSchema, source, 'environment');
}

let cached: Env | undefined;

/** The process environment, parsed once. */
export function env(): Env {
  cached ??= parseEnv(process.env);
  return cached;
}
