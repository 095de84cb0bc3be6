import type { Env } from '../core/env.ts';
import { createPool } from '../db/pool.ts';
import { Chunker } from '../pipeline/chunk.ts';
import { LocalEmbedder } from '../pipeline/embed.ts';
import { LocalKeyFileProvider } from '../vault/key-provider.ts';
import type { ActivityDeps } from './activities/index.ts';

/** Production activity dependencies from the environment: pool, KEK, model, chunker. */
export async function activityDepsFromEnv(config: Env): Promise<ActivityDeps> {
  const [keys, embedder, chunker] = await Promise.all([
    LocalKeyFileProvider.open(config.ASTRY_KEK_FILE),
    LocalEmbedder.load({ modelDir: config.ASTRY_MODEL_DIR, model: config.ASTRY_EMBED_MODEL, batchSize: config.ASTRY_EMBED_BATCH }),
    Chunker.load(config.ASTRY_MODEL_DIR, config.ASTRY_EMBED_MODEL),
  ]);
  return {
    pool: createPool(config.DATABASE_URL),
    keys,
    embedder,
    chunker,
    maxFileBytes: config.ASTRY_MAX_FILE_BYTES,
    extractTimeoutMs: 30_000,
  };
}
