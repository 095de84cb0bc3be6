import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { AuditLog } from '../audit/log.ts';
import { AstryError } from '../core/errors.ts';
import { principalSet } from '../db/principals.ts';
import { personalAuditFields } from '../erasure/personal.ts';
import { recordUsage, spentToday } from '../db/usage.ts';
import type { Answer, Budget, ModelProvider } from '../models/types.ts';
import type { Embedder } from '../pipeline/embed.ts';
import { readDocument } from '../pipeline/store.ts';
import { noBarriers, type BarrierPolicy } from '../retrieval/barriers.ts';
import { searchAuthorized, type SearchOptions, type SearchPath } from '../retrieval/search.ts';
import { materialize, type Sandbox } from '../sandbox/materialize.ts';
import { ToolRunner } from '../sandbox/runner.ts';
import type { Confinement } from '../sandbox/confinement.ts';
import type { KeyProvider } from '../vault/key-provider.ts';

/** Everything the query path talks to; the worker builds it once, tests pass their own. */
export interface AskDeps {
  pool: pg.Pool;
  keys: KeyProvider;
  embedder: Embedder;
  provider: ModelProvider;
  audit: AuditLog;
  /** Directory under which per-request sandboxes are created (0700). */
  sandboxRoot: string;
  barriers?: BarrierPolicy;
  search?: SearchOptions;
  /** Per-query limits. */
  budget: Budget;
  /** Per-user spend cap per UTC day, in USD. */
  maxUsdPerUserPerDay: number;
  /** Most documents materialized per query (default 8). */
  maxDocuments?: number;
  /** How tool runners are confined (default bwrap); the query worker sets what chooseConfinement() found. */
  confinement?: Confinement;
}

/** Everyone who will see the answer, e.g. the members of the Slack channel it is posted in. */
export interface AskAudience {
  /** User principal ids; the answer may only use documents every one of them (and the asker) can read. */
  mustBeReadableBy: number[];
}

/** A question from an already authenticated user (step 1 ran at the edge: API or Slack). */
export interface AskRequest {
  requestId?: string;
  workspaceId: string;
  principalId: number;
  question: string;
  /** Absent: the answer is for the asker alone (their whole authorized set). */
  audience?: AskAudience;
}

/** A cited source, drawn only from the files materialized for this request. */
export interface SourceCitation {
  documentId: string;
  title: string;
  url: string;
}

/** Milliseconds spent in each step, for the latency benchmark. */
export interface StepTimings {
  identity: number;
  retrieval: number;
  materialize: number;
  toolRunnerStart: number;
  model: number;
  audit: number;
}

export interface AskResult {
  requestId: string;
  answer: Answer;
  citations: SourceCitation[];
  /** Document ids materialized into the sandbox (the audit records the same list). */
  materialized: string[];
  retrievalPath: SearchPath;
  timings: StepTimings;
  /**
   * With an audience only: how many of the documents the asker alone would have been given were left
   * out because someone in the audience may not read them (tell the asker, never the audience).
   */
  withheld?: number;
}

const since = (start: number) => performance.now() - start;

/** The asker must still be an active user: deactivation bites on the next request, queued ones included. */
async function assertActive(pool: pg.Pool, workspaceId: string, principalId: number): Promise<void> {
  const { rows } = await pool.query<{ active: boolean }>(
    `SELECT active FROM principals WHERE id = $1 AND workspace_id = $2 AND kind = 'user'`,
    [principalId, workspaceId],
  );
  if (rows[0]?.active !== true) throw new AstryError('FORBIDDEN', 'this account may not ask questions');
}

/**
 * Steps 2-5 of a query: authorized set (inside the SQL), sandbox of real decrypted copies, the model
 * scoped to confined tools, audit; the sandbox is destroyed in `finally` whatever happens.
 */
export async function answerQuestion(deps: AskDeps, request: AskRequest): Promise<AskResult> {
  const requestId = request.requestId ?? randomUUID();
  const timings: StepTimings = { identity: 0, retrieval: 0, materialize: 0, toolRunnerStart: 0, model: 0, audit: 0 };
  const actor = `principal:${request.principalId}`;
  const questionHash = createHash('sha256').update(request.question).digest('hex');
  let materialized: string[] = [];
  let sandbox: Sandbox | undefined;
  let runner: ToolRunner | undefined;
  let outcome = 'error';
  let answer: Answer | undefined;
  let retrievalPath: SearchPath = 'exact';
  let withheld: number | undefined;
  try {
    let start = performance.now();
    await assertActive(deps.pool, request.workspaceId, request.principalId);
    const spent = await spentToday(deps.pool, request.principalId);
    if (spent >= deps.maxUsdPerUserPerDay) {
      outcome = 'refused_daily_budget';
      throw new AstryError('BUDGET_EXHAUSTED', `daily budget of $${deps.maxUsdPerUserPerDay.toFixed(2)} reached; try again tomorrow`);
    }
    timings.identity = since(start);

    start = performance.now();
    const principals = await principalSet(deps.pool, request.principalId);
    const [embedding] = await deps.embedder.embed([request.question]);
    if (!embedding) throw new Error('the question could not be embedded');
    const found = await searchAuthorized(deps.pool, { workspaceId: request.workspaceId, principalIds: principals, embedding }, deps.search);
    retrievalPath = found.path;
    const ranked = [...new Set(found.hits.map((h) => h.documentId))];
    const allowed = await (deps.barriers ?? noBarriers).allowed({ principalId: request.principalId, principalSet: principals }, ranked);
    const own = ranked.filter((id) => allowed.has(id)).slice(0, deps.maxDocuments ?? 8);
    let documentIds = own;
    if (request.audience) {
      const hits = new Map(found.hits.map((h) => [h.documentId, h.distance]));
      const shared = await audienceDocuments(deps, request, request.audience, embedding, own, hits);
      documentIds = shared;
      withheld = own.filter((id) => !shared.includes(id)).length;
    }
    timings.retrieval = since(start);

    start = performance.now();
    const docs = [];
    for (const documentId of documentIds) {
      const { title, text } = await readDocument(deps.pool, deps.keys, documentId);
      docs.push({ documentId, title, text });
    }
    sandbox = await materialize(deps.sandboxRoot, docs);
    materialized = sandbox.files.map((f) => f.documentId);
    timings.materialize = since(start);

    start = performance.now();
    runner = await ToolRunner.start(sandbox, deps.confinement ? { confinement: deps.confinement } : {});
    timings.toolRunnerStart = since(start);

    start = performance.now();
    answer = await deps.provider.answer({ question: request.question, tools: runner, budget: deps.budget });
    timings.model = since(start);
    outcome = answer.partial ? `partial_${answer.stop}` : 'answered';

    await recordUsage(deps.pool, {
      workspaceId: request.workspaceId, principalId: request.principalId, requestId,
      provider: answer.provider, model: answer.model, inputTokens: answer.usage.inputTokens,
      outputTokens: answer.usage.outputTokens, toolCalls: answer.usage.toolCalls, usd: answer.usage.usd,
    });
    const byName = new Map(sandbox.files.map((f) => [f.name, f]));
    const cited = [...new Set(answer.citations.map((c) => c.name))].flatMap((name) => byName.get(name) ?? []);
    const urls = await documentUrls(deps.pool, cited.map((f) => f.documentId));
    const citations = cited.map((f) => ({ documentId: f.documentId, title: f.title, url: urls.get(f.documentId) ?? '' }));
    return { requestId, answer, citations, materialized, retrievalPath, timings, ...(withheld === undefined ? {} : { withheld }) };
  } finally {
    await runner?.close().catch(() => undefined);
    await sandbox?.destroy();
    const start = performance.now();
    // Who asked, what and what was cited are sealed under the asker's own key (docs/erasure.md).
    const personal = await personalAuditFields(deps.pool, deps.keys, request.workspaceId, request.principalId, {
      actor, questionSha256: questionHash, citations: answer?.citations.map((c) => c.name) ?? [],
    });
    await deps.audit.append({
      workspaceId: request.workspaceId,
      type: 'query',
      ...personal,
      documentIds: materialized,
      ...(answer ? { model: `${answer.provider}/${answer.model}`, costUsd: answer.usage.usd } : {}),
      outcome,
      details: {
        requestId, retrievalPath, confinement: deps.confinement ?? 'bwrap',
        ...(request.audience ? { audienceSize: new Set([...request.audience.mustBeReadableBy, request.principalId]).size } : {}),
      },
    });
    timings.audit = since(start);
  }
}

async function documentUrls(pool: pg.Pool, ids: readonly string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const { rows } = await pool.query<{ id: string; url: string }>(`SELECT id, url FROM documents WHERE id = ANY($1::bigint[])`, [ids]);
  return new Map(rows.map((r) => [r.id, r.url]));
}

/**
 * The documents an answer for `audience` may use, best first: among the asker's own candidates (`own`,
 * with their distances in `ownHits`) and the nearest chunks granted to a principal every member holds,
 * only those every member can read (checked in SQL against document grants and nested memberships,
 * so a file shared into two channels counts for an audience spanning both) and no member's barriers block.
 * Members who do not exist in the workspace read nothing, so they make the answer use nothing.
 */
async function audienceDocuments(
  deps: AskDeps,
  request: AskRequest,
  audience: AskAudience,
  embedding: readonly number[],
  own: readonly string[],
  ownHits: ReadonlyMap<string, number>,
): Promise<string[]> {
  const members = [...new Set([...audience.mustBeReadableBy, request.principalId])];
  const sets = await memberPrincipalSets(deps.pool, request.workspaceId, members);
  const common = members.reduce<number[] | undefined>((acc, m) => {
    const set = sets.get(m) ?? [];
    return acc === undefined ? set : acc.filter((id) => set.includes(id));
  }, undefined) ?? [];
  const distance = new Map(own.map((id) => [id, ownHits.get(id) ?? Number.POSITIVE_INFINITY]));
  if (common.length > 0) {
    const found = await searchAuthorized(deps.pool, { workspaceId: request.workspaceId, principalIds: common, embedding }, deps.search);
    for (const h of found.hits) distance.set(h.documentId, Math.min(distance.get(h.documentId) ?? Number.POSITIVE_INFINITY, h.distance));
  }
  let candidates = [...distance.keys()];
  const { rows } = await deps.pool.query<{ id: string }>(
    `WITH RECURSIVE reach(member, id) AS (
       SELECT p.id, p.id FROM principals p WHERE p.id = ANY($2::int[]) AND p.workspace_id = $3
       UNION
       SELECT r.member, m.group_id FROM memberships m JOIN reach r ON m.member_id = r.id
     )
     SELECT d.id::text AS id FROM documents d
     WHERE d.id = ANY($1::bigint[]) AND d.workspace_id = $3
       AND NOT EXISTS (
         SELECT 1 FROM unnest($2::int[]) AS member(id)
         WHERE NOT EXISTS (
           SELECT 1 FROM document_grants g JOIN reach r ON r.id = g.principal_id AND r.member = member.id
           WHERE g.document_id = d.id AND (g.expires_at IS NULL OR g.expires_at > now())))`,
    [candidates, members, request.workspaceId],
  );
  const readable = new Set(rows.map((r) => r.id));
  candidates = candidates.filter((id) => readable.has(id));
  for (const member of members) {
    const allowed = await (deps.barriers ?? noBarriers).allowed({ principalId: member, principalSet: sets.get(member) ?? [] }, candidates);
    candidates = candidates.filter((id) => allowed.has(id));
  }
  return candidates
    .sort((a, b) => (distance.get(a) ?? 0) - (distance.get(b) ?? 0) || Number(a) - Number(b))
    .slice(0, deps.maxDocuments ?? 8);
}

/** Each member's principal set (themselves, transitive groups, specials), in one query. */
async function memberPrincipalSets(pool: pg.Pool, workspaceId: string, members: readonly number[]): Promise<Map<number, number[]>> {
  const { rows } = await pool.query<{ member: number; ids: number[] }>(
    `WITH RECURSIVE reach(member, id) AS (
       SELECT p.id, p.id FROM principals p WHERE p.id = ANY($1::int[]) AND p.workspace_id = $2
       UNION
       SELECT r.member, m.group_id FROM memberships m JOIN reach r ON m.member_id = r.id
     )
     SELECT member, array_agg(id ORDER BY id) AS ids FROM reach GROUP BY member`,
    [members, workspaceId],
  );
  return new Map(rows.map((r) => [r.member, r.ids]));
}
