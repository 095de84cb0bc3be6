import type { Queryable } from './pool.ts';

export interface UsageRecord {
  workspaceId: string;
  principalId: number;
  requestId: string;
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  toolCalls: number;
  usd: number;
}

/** Records one query's real spend; a retried job with the same request id is recorded once. */
export async function recordUsage(db: Queryable, usage: UsageRecord): Promise<void> {
  await db.query(
    `INSERT INTO usage_ledger (workspace_id, principal_id, request_id, provider, model, input_tokens, output_tokens, tool_calls, usd)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (request_id) DO NOTHING`,
    [usage.workspaceId, usage.principalId, usage.requestId, usage.provider, usage.model, usage.inputTokens, usage.outputTokens, usage.toolCalls, usage.usd],
  );
}

/** A user's spend since UTC midnight, in USD. */
export async function spentToday(db: Queryable, principalId: number): Promise<number> {
  const { rows } = await db.query<{ usd: string | null }>(
    `SELECT sum(usd) AS usd FROM usage_ledger WHERE principal_id = $1 AND at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`,
    [principalId],
  );
  return Number(rows[0]?.usd ?? 0);
}
