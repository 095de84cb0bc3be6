/**
 * What the bot does with a question asked in Slack, once the endpoint has acknowledged it: identify
 * the asker, apply their rate limit, work out who will see the answer, ask the query worker, post
 * the answer in the thread, and offer the asker privately what the conversation could not be shown.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { AuditLog } from '../audit/log.ts';
import type { SlackConnector } from '../connectors/slack/connector.ts';
import { isAstryError } from '../core/errors.ts';
import { refusalAuditFields, type RefusedAsker } from '../erasure/personal.ts';
import { sourceIdentifier } from '../erasure/pseudonym.ts';
import type { KeyProvider } from '../vault/key-provider.ts';
import type { AskRequest, AskResult } from '../worker/ask.ts';
import type { AskJobData } from '../worker/queue.ts';
import { resolveSlackAsker } from './asker.ts';
import { conversationAudience } from './audience.ts';
import { composeQuestion, MAX_QUESTION_CHARS, type Conversations } from './conversation.ts';
import * as say from './format.ts';
import type { PrivateAnswerJob, QuestionJob } from './jobs.ts';
import type { Offers } from './offers.ts';
import type { Place, SlackPoster } from './poster.ts';
import type { RateLimiter } from './rate-limit.ts';

/** What the bot worker talks to; built once per process (see runtime.ts), tests pass their own. */
export interface SlackBotDeps {
  pool: pg.Pool;
  workspaceId: string;
  /** The Slack connection whose identities resolve askers and whose bot token posts. */
  connectionId: string;
  /** The team the connection's token belongs to: events of any other team are ignored. */
  teamId: string;
  /** The bot's own user id (its mentions are stripped from questions). */
  botUserId: string;
  slack: Pick<SlackConnector, 'members' | 'resolveExternal'>;
  poster: SlackPoster;
  /** The query worker, through its queue (AskQueue). */
  asker: { ask(data: AskJobData, timeoutMs: number): Promise<AskResult> };
  conversations: Conversations;
  offers: Offers;
  rateLimiter: RateLimiter;
  /** Refusals are audited here (answered questions are audited by the query worker). */
  audit?: AuditLog;
  /** Seals a refused asker's identifiers under their subject key, or pseudonymizes them (see `audit`). */
  keys: KeyProvider;
  /** How long to wait for the query worker, in ms. */
  askTimeoutMs: number;
  /** Where unexpected failures are reported (default console.error). */
  onError?: (message: string, err: unknown) => void;
}

/** How a job ended, for logs, tests and the latency benchmark. */
export type Outcome =
  | 'answered'
  | 'answered_private'
  | 'ignored'
  | 'help'
  | 'refused_unlinked'
  | 'refused_deactivated'
  | 'refused_rate_limited'
  | 'refused_budget'
  | 'audience_unknown'
  | 'offer_expired'
  | 'failed';

const mentionOf = (botUserId: string) => new RegExp(`<@${botUserId}(?:\\|[^>]*)?>`, 'g');

/** The question without the bot's mention and Slack's escaping of &, < and >. */
export function questionText(text: string, botUserId: string): string {
  return text.replace(mentionOf(botUserId), ' ').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&').replace(/\s+/g, ' ').trim();
}

/**
 * Audits a refusal naming no one in clear: a canonical user's `personal` fields are sealed under their
 * key, anyone else is a keyed pseudonym of `slack:<user id>`; `details` stay in clear and must name no one.
 */
async function audit(
  deps: SlackBotDeps,
  asker: RefusedAsker,
  outcome: string,
  personal: Record<string, unknown>,
  details: Record<string, unknown>,
): Promise<void> {
  if (!deps.audit) return;
  try {
    const who = await refusalAuditFields(deps.pool, deps.keys, deps.workspaceId, asker, personal);
    await deps.audit.append({ workspaceId: deps.workspaceId, type: 'query', ...who, outcome, documentIds: [], details: { via: 'slack', ...details } });
  } catch (err) {
    (deps.onError ?? console.error)('slack bot: audit append failed', err);
  }
}

/** Tells the asker privately; a failure to do so is reported, not thrown (there is nobody else to tell). */
async function tell(deps: SlackBotDeps, place: Place, user: string, message: say.SlackText): Promise<void> {
  try {
    await deps.poster.ephemeral(place, user, message);
  } catch (err) {
    (deps.onError ?? console.error)(`slack bot: could not tell ${user} in ${place.channel}`, err);
  }
}

/** The user-facing message for a failed ask, and the outcome it counts as. */
function failureMessage(err: unknown, reference: string): { message: say.SlackText; outcome: Outcome } {
  if (isAstryError(err, 'BUDGET_EXHAUSTED')) return { message: say.budgetMessage(err.message), outcome: 'refused_budget' };
  if (isAstryError(err, 'FORBIDDEN')) return { message: say.refusalMessage(), outcome: 'refused_deactivated' };
  if (isAstryError(err, 'TIMEOUT')) return { message: say.timeoutMessage(), outcome: 'failed' };
  if (isAstryError(err, 'CONFINEMENT_UNAVAILABLE')) return { message: say.unavailableMessage(), outcome: 'failed' };
  return { message: say.errorMessage(reference), outcome: 'failed' };
}

/** Admits the asker and counts the question against their rate limit; tells them if not. */
async function admit(
  deps: SlackBotDeps,
  userId: string,
  place: Place,
  requestId: string,
): Promise<{ ok: true; principalId: number } | { ok: false; outcome: Outcome }> {
  const asker = await resolveSlackAsker(deps.pool, deps, userId);
  if (!asker.ok) {
    await tell(deps, place, userId, say.refusalMessage());
    await audit(
      deps,
      asker.principalId === undefined ? { identifier: sourceIdentifier('slack', userId) } : { principalId: asker.principalId },
      'refused_forbidden',
      { actor: `slack:${deps.teamId}:${userId}`, slackUserId: userId, ...(asker.principalId === undefined ? {} : { principalId: asker.principalId }) },
      { requestId, reason: asker.reason, detail: asker.detail },
    );
    return { ok: false, outcome: asker.reason === 'unlinked' ? 'refused_unlinked' : 'refused_deactivated' };
  }
  const rate = await deps.rateLimiter.take(String(asker.principalId), requestId);
  if (!rate.allowed) {
    // Told once per window: a user pasting ten questions gets one notice, not ten.
    if (rate.notify) await tell(deps, place, userId, say.rateLimitedMessage(rate.retryAfterSeconds));
    await audit(deps, { principalId: asker.principalId }, 'refused_rate_limited', { actor: `principal:${asker.principalId}`, slackUserId: userId }, { requestId });
    return { ok: false, outcome: 'refused_rate_limited' };
  }
  return { ok: true, principalId: asker.principalId };
}

/** Handles one question from a mention or a DM. Expected failures are told to the asker; nothing throws for them. */
export async function handleQuestion(deps: SlackBotDeps, job: QuestionJob): Promise<Outcome> {
  if (job.teamId !== deps.teamId || job.userId === deps.botUserId) return 'ignored';
  const requestId = randomUUID();
  const threadTs = job.threadTs ?? job.ts;
  const place: Place = { channel: job.channelId, threadTs };
  try {
    const admitted = await admit(deps, job.userId, place, requestId);
    if (!admitted.ok) return admitted.outcome;
    const principalId = admitted.principalId;

    const question = questionText(job.text, deps.botUserId);
    if (question === '') {
      await tell(deps, place, job.userId, say.emptyQuestionMessage());
      return 'help';
    }
    if (question.length > MAX_QUESTION_CHARS) {
      await tell(deps, place, job.userId, say.tooLongMessage(MAX_QUESTION_CHARS));
      return 'help';
    }
    const composed = composeQuestion(await deps.conversations.recent(job.channelId, threadTs), question);

    // Who will see the answer, read from Slack now. Done for DMs too: a conversation is only private
    // if Slack says the asker is the one human in it, whatever the event's channel_type claims.
    const audience = await conversationAudience(deps.pool, deps.slack, deps, job.channelId, principalId);
    const offer = { workspaceId: deps.workspaceId, teamId: deps.teamId, channelId: job.channelId, threadTs, slackUserId: job.userId, principalId, question: composed };
    if (audience.unknown.length > 0) {
      await deps.poster.post(place, say.audienceUnknownMessage());
      await tell(deps, place, job.userId, say.privateOnlyOffer(await deps.offers.create(offer)));
      return 'audience_unknown';
    }
    const shared = audience.principalIds.length > 1;
    const request: AskRequest = {
      workspaceId: deps.workspaceId, principalId, question: composed,
      ...(shared ? { audience: { mustBeReadableBy: audience.principalIds } } : {}),
    };
    let result: AskResult;
    try {
      result = await deps.asker.ask({ ...request, requestId }, deps.askTimeoutMs);
    } catch (err) {
      const failed = failureMessage(err, requestId);
      if (failed.outcome === 'failed') (deps.onError ?? console.error)(`slack bot: question ${requestId} failed`, err);
      await tell(deps, place, job.userId, failed.message);
      return failed.outcome;
    }

    await deps.poster.post(place, say.answerMessage(result, { scope: shared ? 'channel' : 'private' }));
    if (shared && (result.withheld ?? 0) > 0) {
      await tell(deps, place, job.userId, say.withheldOffer(result.withheld ?? 0, await deps.offers.create(offer)));
    }
    await deps.conversations.append(job.channelId, threadTs, principalId, requestId, { question, answer: result.answer.text, mode: result.answer.mode });
    return 'answered';
  } catch (err) {
    (deps.onError ?? console.error)(`slack bot: question ${requestId} in ${job.channelId} failed`, err);
    await tell(deps, place, job.userId, say.errorMessage(requestId));
    return 'failed';
  }
}

/** Handles a click on "send me the full answer privately": the asker's whole authorized set, by DM. */
export async function handlePrivateAnswer(deps: SlackBotDeps, job: PrivateAnswerJob): Promise<Outcome> {
  if (job.teamId !== deps.teamId) return 'ignored';
  const requestId = randomUUID();
  const place: Place = { channel: job.channelId, threadTs: job.threadTs };
  try {
    const offer = await deps.offers.take(job.offerId);
    if (offer === null || offer.slackUserId !== job.userId || offer.teamId !== deps.teamId) {
      await tell(deps, place, job.userId, say.offerExpiredMessage());
      return 'offer_expired';
    }
    // Identity again: the asker may have been deactivated since the offer was made.
    const admitted = await admit(deps, job.userId, place, requestId);
    if (!admitted.ok) return admitted.outcome;

    let result: AskResult;
    try {
      result = await deps.asker.ask({ requestId, workspaceId: deps.workspaceId, principalId: admitted.principalId, question: offer.question }, deps.askTimeoutMs);
    } catch (err) {
      const failed = failureMessage(err, requestId);
      if (failed.outcome === 'failed') (deps.onError ?? console.error)(`slack bot: private answer ${requestId} failed`, err);
      await tell(deps, place, job.userId, failed.message);
      return failed.outcome;
    }
    const dm = await deps.poster.openDm(job.userId);
    const ts = await deps.poster.post({ channel: dm }, say.answerMessage(result, { scope: 'private', intro: say.privateIntro(offer.channelId) }));
    // A follow-up in the DM's thread continues from the full answer.
    await deps.conversations.append(dm, ts, admitted.principalId, requestId, { question: offer.question, answer: result.answer.text, mode: result.answer.mode });
    return 'answered_private';
  } catch (err) {
    (deps.onError ?? console.error)(`slack bot: private answer ${requestId} failed`, err);
    await tell(deps, place, job.userId, say.errorMessage(requestId));
    return 'failed';
  }
}
