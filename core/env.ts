import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { AstryError } from './errors.ts';

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
  /** Canonical workspace name used by the CLI. */
  ASTRY_WORKSPACE: z.string().min(1).default('default'),
});

export type Env = z.infer<typeof EnvSchema>;

/** Parses an environment record; throws CONFIG_INVALID naming each bad variable. */
export function parseEnv(source: Record<string, string | undefined>): Env {
  const result = EnvSchema.safeParse(source);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new AstryError('CONFIG_INVALID', `invalid environment: ${problems}`);
  }
  return result.data;
}

let cached: Env | undefined;

/** The process environment, parsed once. */
export function env(): Env {
  cached ??= parseEnv(process.env);
  return cached;
}
