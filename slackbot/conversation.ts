/**
 * Thread history: what the bot was asked and answered in each Slack thread, so a follow-up ("and who
 * owns it?") is asked with its context. Turns are sealed at rest like document text (they quote it).
 */
import type pg from 'pg';
import { z } from 'zod';
import { decrypt, encrypt, newDataKey, packSealed, unpackSealed } from '../vault/envelope.ts';
import type { KeyProvider } from '../vault/key-provider.ts';
import { slackTurnKeyContext as keyContext } from '../vault/wrap-contexts.ts';

/** One answered question. */
export interface Turn {
  question: string;
  answer: string;
  /** 'extractive' answers are quotes of documents, not reasoning: only their questions are context. */
  mode: 'extractive' | 'model';
}

const TurnSchema = z.object({ question: z.string(), answer: z.string(), mode: z.enum(['extractive', 'model']) });

/** Options of {@link Conversations}. */
export interface ConversationsOptions {
  pool: pg.Pool;
  keys: KeyProvider;
  workspaceId: string;
  connectionId: string;
  /** Most recent turns given as context (default 3). */
  maxTurns?: number;
  /** Turns older than this many days are deleted (default 30). */
  retentionDays?: number;
}

const aad = (workspaceId: string, requestId: string) => ({ workspaceId, documentId: `slack-turn:${requestId}`, version: 1, part: 'turn' });

export class Conversations {
  readonly #o: Required<ConversationsOptions>;

  constructor(options: ConversationsOptions) {
    this.#o = { maxTurns: 3, retentionDays: 30, ...options };
  }

  /** The thread's latest turns, oldest first. */
  async recent(channelId: string, threadTs: string): Promise<Turn[]> {
    const { rows } = await this.#o.pool.query<{ request_id: string; sealed: Buffer; wrapped_dek: Buffer; kek_id: string }>(
      `SELECT request_id, sealed, wrapped_dek, kek_id FROM slack_turns
       WHERE connection_id = $1 AND channel_id = $2 AND thread_ts = $3 AND at > now() - make_interval(days => $4)
       ORDER BY id DESC LIMIT $5`,
      [this.#o.connectionId, channelId, threadTs, this.#o.retentionDays, this.#o.maxTurns],
    );
    const turns: Turn[] = [];
    for (const row of rows.reverse()) {
      const dek = await this.#o.keys.unwrap(row.wrapped_dek, row.kek_id, keyContext(this.#o.workspaceId, row.request_id));
      try {
        const plain = decrypt(unpackSealed(row.sealed), aad(this.#o.workspaceId, row.request_id), dek);
        turns.push(TurnSchema.parse(JSON.parse(plain.toString('utf8'))));
      } finally {
        dek.fill(0);
      }
    }
    return turns;
  }

  /** Records a turn of the thread (asked by `principalId`) and drops turns past retention. */
  async append(channelId: string, threadTs: string, principalId: number, requestId: string, turn: Turn): Promise<void> {
    const dek = newDataKey();
    try {
      const sealed = packSealed(encrypt(Buffer.from(JSON.stringify(turn), 'utf8'), aad(this.#o.workspaceId, requestId), dek));
      const { wrapped, keyId } = await this.#o.keys.wrap(dek, keyContext(this.#o.workspaceId, requestId));
      await this.#o.pool.query(
        `INSERT INTO slack_turns (workspace_id, connection_id, channel_id, thread_ts, principal_id, request_id, sealed, wrapped_dek, kek_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (request_id) DO NOTHING`,
        [this.#o.workspaceId, this.#o.connectionId, channelId, threadTs, principalId, requestId, sealed, wrapped, keyId],
      );
    } finally {
      dek.fill(0);
    }
    await this.#o.pool.query(`DELETE FROM slack_turns WHERE at < now() - make_interval(days => $1)`, [this.#o.retentionDays]);
  }
}

/** Longest question accepted from Slack, in characters (the HTTP API's limit too). */
export const MAX_QUESTION_CHARS = 4000;
/** Most characters of context put before a follow-up. */
const MAX_CONTEXT_CHARS = 2000;
const MAX_TURN_QUESTION_CHARS = 400;
const MAX_TURN_ANSWER_CHARS = 600;

const clip = (text: string, max: number): string => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1).trimEnd()}…`;
};

/**
 * The question sent to the worker: a short transcript of the thread's previous turns, then the new
 * question as the last `Q:`. Bounded: the oldest turns go first when the context exceeds its budget.
 * Why only model answers are repeated: an extractive answer is quotes the worker will find again
 * from the earlier question, and its long words would crowd the keyword search.
 */
export function composeQuestion(history: readonly Turn[], question: string): string {
  if (history.length === 0) return question;
  const lines = history.map((t) => {
    const q = `Q: ${clip(t.question, MAX_TURN_QUESTION_CHARS)}`;
    return t.mode === 'model' ? `${q}\nA: ${clip(t.answer, MAX_TURN_ANSWER_CHARS)}` : q;
  });
  while (lines.length > 0 && lines.join('\n').length > MAX_CONTEXT_CHARS) lines.shift();
  return lines.length === 0 ? question : `${lines.join('\n')}\nQ: ${question}`;
}
