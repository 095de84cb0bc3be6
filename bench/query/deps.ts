// The query path's dependencies as production builds them (worker/runtime.ts), except the question
// embedder: the synthetic company's vectors come from its topic model, not from the text model.
import { join } from 'node:path';
import type pg from 'pg';
import { AuditLog } from '../../audit/log.ts';
import { LocalEd25519Signer } from '../../audit/signer.ts';
import { env } from '../../core/env.ts';
import { ExtractiveProvider } from '../../models/extractive.ts';
import type { SearchOptions } from '../../retrieval/search.ts';
import { LocalKeyFileProvider } from '../../vault/key-provider.ts';
import type { AskDeps } from '../../worker/ask.ts';
import { claimSandboxRoot } from '../../worker/sandbox-root.ts';
import { TopicModel, TopicQuestionEmbedder } from './company.ts';
import { budgetFromEnv } from '../../worker/runtime.ts';

/** The KEK of a bench database lives in its state directory, so a kept database can be reused. */
export const kekPath = (stateDir: string): string => join(stateDir, 'kek');

/** AskDeps with the extractive model, a real audit log (own spool per process) and production budgets. */
export async function benchAskDeps(pool: pg.Pool, stateDir: string, seed: number, processName: string, search?: SearchOptions): Promise<AskDeps> {
  const config = env();
  const [keys, signer, sandbox] = await Promise.all([
    LocalKeyFileProvider.open(kekPath(stateDir)),
    LocalEd25519Signer.open(join(stateDir, 'audit-ed25519.pem')),
    claimSandboxRoot(join(stateDir, 'sandboxes')),
  ]);
  const audit = new AuditLog({ pool, spoolDir: join(stateDir, `audit-spool-${processName}`), checkpointDir: join(stateDir, 'audit-checkpoints'), signer });
  return {
    pool, keys, audit,
    embedder: new TopicQuestionEmbedder(new TopicModel(seed)),
    provider: new ExtractiveProvider(),
    sandboxRoot: sandbox.root,
    ...(search ? { search } : {}),
    ...budgetFromEnv(config),
  };
}
