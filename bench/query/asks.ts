// Latency by step of answerQuestion (real sandbox, bwrap tool runner, extractive model, audit log),
// one question at a time per asker, and of the identity work done at the edge before it (token
// verification against a real IdP's JWKS, then resolution to the canonical user).
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { DEFAULT_API_AUDIENCE, SEEDED_IDP_USERS } from '../../fixtures/idp/people.ts';
import { startIdp } from '../../fixtures/idp/server.ts';
import { mulberry32 } from '../../fixtures/slack/prng.ts';
import { resolveUser } from '../../identity/users.ts';
import { TokenVerifier } from '../../identity/verifier.ts';
import { answerQuestion, type AskDeps, type StepTimings } from '../../worker/ask.ts';
import { ASKERS, type TopicModel } from './company.ts';
import type { SeededCompany } from './seed.ts';
import { round1, summarize, type Summary } from './stats.ts';

const WARMUP_ASKS = 3;
export const STEPS: readonly (keyof StepTimings)[] = ['identity', 'retrieval', 'materialize', 'toolRunnerStart', 'model', 'audit'];

export interface AskRow {
  asker: string;
  visibleChunks: number;
  asks: number;
  paths: Record<string, number>;
  steps: Record<keyof StepTimings, Summary>;
  /** Wall time of answerQuestion as the caller sees it (the sum of the steps plus sandbox teardown). */
  totalMs: Summary;
  meanMaterialized: number;
  /** Answers that quoted at least one passage (the extractive model found the question's words). */
  answeredWithCitations: number;
}

/** A question about one of the asker's own topics (what people mostly ask about). */
export function questionFor(model: TopicModel, askerIndex: number, rng: ReturnType<typeof mulberry32>): string {
  const asker = ASKERS[askerIndex];
  if (!asker) throw new Error(`no asker ${askerIndex}`);
  return model.question(rng.pick(model.homeTopics(asker)), rng);
}

export async function measureAsks(deps: AskDeps, company: SeededCompany, model: TopicModel, opts: { asks: number; seed: number; log: (line: string) => void }): Promise<AskRow[]> {
  const rows: AskRow[] = [];
  for (const [index, asker] of company.askers.entries()) {
    const rng = mulberry32(opts.seed * 97 + index);
    const ask = (question: string) => answerQuestion(deps, { workspaceId: company.workspaceId, principalId: asker.principalId, question });
    for (let i = 0; i < WARMUP_ASKS; i++) await ask(questionFor(model, index, rng));
    const samples: StepTimings[] = [];
    const totals: number[] = [];
    const paths: Record<string, number> = {};
    let materialized = 0;
    let cited = 0;
    for (let i = 0; i < opts.asks; i++) {
      const start = performance.now();
      const result = await ask(questionFor(model, index, rng));
      totals.push(performance.now() - start);
      samples.push({ ...result.timings });
      paths[result.retrievalPath] = (paths[result.retrievalPath] ?? 0) + 1;
      materialized += result.materialized.length;
      if (result.citations.length > 0) cited++;
    }
    const step = (s: keyof StepTimings) => summarize(samples.map((t) => t[s]));
    const steps = {
      identity: step('identity'), retrieval: step('retrieval'), materialize: step('materialize'),
      toolRunnerStart: step('toolRunnerStart'), model: step('model'), audit: step('audit'),
    };
    const row: AskRow = {
      asker: asker.label, visibleChunks: asker.visibleChunks, asks: opts.asks, paths, steps, totalMs: summarize(totals),
      meanMaterialized: round1(materialized / opts.asks), answeredWithCitations: cited,
    };
    rows.push(row);
    opts.log(`  ${asker.label}: total ${row.totalMs.p50} / ${row.totalMs.p95} ms, retrieval ${steps.retrieval.p50} / ${steps.retrieval.p95} ms`);
  }
  return rows;
}

export interface IdentityReport {
  /** First verification: fetches the JWKS from the IdP. */
  coldVerifyMs: number;
  verifyRs256Ms: Summary;
  verifyEs256Ms: Summary;
  resolveUserMs: Summary;
  /** verify + resolveUser, as the API does per request (RS256 and ES256 tokens alternating). */
  edgeTotalMs: Summary;
}

/** The edge's identity work per request, against the test IdP (oidc-provider, real JWT access tokens). */
export async function measureIdentity(pool: pg.Pool, workspaceId: string, rounds: number): Promise<IdentityReport> {
  const idp = await startIdp({ users: SEEDED_IDP_USERS, audience: DEFAULT_API_AUDIENCE });
  try {
    const verifier = new TokenVerifier({ issuer: idp.issuer, audience: DEFAULT_API_AUDIENCE, jwksUrl: idp.jwksUrl });
    const tokens: { alg: 'RS256' | 'ES256'; token: string }[] = [];
    for (const a of ASKERS) {
      tokens.push({ alg: 'RS256', token: await idp.tokenFor(a.email, { alg: 'RS256' }) });
      tokens.push({ alg: 'ES256', token: await idp.tokenFor(a.email, { alg: 'ES256' }) });
    }
    let start = performance.now();
    await verifier.verify(tokens[0]?.token ?? '');
    const coldVerifyMs = round1(performance.now() - start);
    const verify: Record<'RS256' | 'ES256', number[]> = { RS256: [], ES256: [] };
    const resolve: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const { alg, token } = tokens[i % tokens.length] ?? { alg: 'RS256', token: '' };
      start = performance.now();
      const verified = await verifier.verify(token);
      const verifiedAt = performance.now();
      await resolveUser(pool, workspaceId, verified);
      const end = performance.now();
      verify[alg].push(verifiedAt - start);
      resolve.push(end - verifiedAt);
      total.push(end - start);
    }
    return { coldVerifyMs, verifyRs256Ms: summarize(verify.RS256), verifyEs256Ms: summarize(verify.ES256), resolveUserMs: summarize(resolve), edgeTotalMs: summarize(total) };
  } finally {
    await idp.stop();
  }
}
