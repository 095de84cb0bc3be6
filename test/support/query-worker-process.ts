// A query worker in its own process, so a test can SIGKILL it mid-job like a crashed machine.
import { AuditLog } from '../../audit/log.ts';
import { LocalEd25519Signer } from '../../audit/signer.ts';
import { env } from '../../core/env.ts';
import { createPool } from '../../db/pool.ts';
import { OpenAIProvider } from '../../models/openai.ts';
import { LocalEmbedder } from '../../pipeline/embed.ts';
import { LocalKeyFileProvider } from '../../vault/key-provider.ts';
import { startQueryWorker } from '../../worker/query-worker.ts';
import { redisConnection } from '../../worker/queue.ts';
import { claimSandboxRoot } from '../../worker/sandbox-root.ts';

const config = env();
const pool = createPool(config.DATABASE_URL);
const worker = await startQueryWorker(
  {
    pool,
    keys: await LocalKeyFileProvider.open(config.ASTRY_KEK_FILE),
    embedder: await LocalEmbedder.load({ modelDir: config.ASTRY_MODEL_DIR, model: config.ASTRY_EMBED_MODEL }),
    provider: new OpenAIProvider({ baseUrl: `${process.env.FAKE_MODEL_URL}/v1`, apiKey: 'sk-test', model: 'openai/gpt-4o-mini' }),
    audit: new AuditLog({
      pool,
      spoolDir: config.ASTRY_AUDIT_SPOOL_DIR,
      checkpointDir: config.ASTRY_AUDIT_CHECKPOINT_DIR,
      signer: await LocalEd25519Signer.open(config.ASTRY_AUDIT_SIGNING_KEY),
    }),
    sandboxRoot: (await claimSandboxRoot(config.ASTRY_SANDBOX_DIR)).root,
    budget: { maxUsd: 0.05, maxTokens: 20_000, maxToolCalls: 8, maxWallMs: 30_000 },
    maxUsdPerUserPerDay: 5,
  },
  { connection: redisConnection(config.REDIS_URL), queueName: process.env.ASTRY_ASK_QUEUE ?? '', lockDurationMs: 2000, stalledIntervalMs: 1000 },
);
process.stdout.write('query worker ready\n');
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
