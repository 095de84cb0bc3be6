/**
 * Everything the bot says, as Slack messages (text fallback + Block Kit). Pure.
 * https://docs.slack.dev/messaging/formatting-message-text · https://docs.slack.dev/reference/block-kit
 */
import type { AskResult } from '../worker/ask.ts';
import { PRIVATE_ANSWER_ACTION } from './jobs.ts';

/** A message ready for chat.postMessage / chat.postEphemeral. */
export interface SlackText {
  text: string;
  blocks: Record<string, unknown>[];
}

/**
 * Escapes text for mrkdwn. Why it matters: answers quote documents, and a quoted `<!channel>` or
 * `<@U123>` would otherwise notify people, and `<https://x|label>` would disguise a link.
 */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Slack's limit on a section block's text; longer answers are split over several sections. */
const SECTION_CHARS = 3000;
/** Most answer characters posted (Slack accepts 40k; beyond a few sections nobody reads in a thread). */
const MAX_ANSWER_CHARS = 12_000;

const section = (text: string): Record<string, unknown> => ({ type: 'section', text: { type: 'mrkdwn', text } });
const context = (text: string): Record<string, unknown> => ({ type: 'context', elements: [{ type: 'mrkdwn', text }] });

function sections(text: string): Record<string, unknown>[] {
  const clipped = text.length > MAX_ANSWER_CHARS ? `${text.slice(0, MAX_ANSWER_CHARS - 1)}…` : text;
  const out: Record<string, unknown>[] = [];
  let rest = clipped;
  while (rest.length > 0) {
    // Cut at a line break when there is one in the second half of the block, so quotes stay whole.
    let cut = Math.min(rest.length, SECTION_CHARS);
    if (cut < rest.length) {
      const nl = rest.lastIndexOf('\n', cut);
      if (nl > SECTION_CHARS / 2) cut = nl;
    }
    out.push(section(rest.slice(0, cut)));
    rest = rest.slice(cut).replace(/^\n/, '');
  }
  return out;
}

/**
 * The answer text with the sandbox's file citations (`[doc-001.txt]`) replaced by the numbers of the
 * sources listed under it (`[1]`). Sandbox file names mean nothing to a reader.
 */
export function numberCitations(result: AskResult): string {
  const names = [...new Set(result.answer.citations.map((c) => c.name))];
  // The worker maps each cited name to one source, in order; if the lists disagree, keep the text as is.
  if (names.length !== result.citations.length) return result.answer.text;
  const number = new Map(names.map((name, i) => [name, i + 1]));
  return result.answer.text.replace(/\[([^[\]\n]{1,300})\]/g, (whole: string, inner: string) => {
    const parts = inner.split(/[,;]/).map((p) => p.trim());
    if (!parts.every((p) => number.has(p))) return whole;
    return `[${parts.map((p) => number.get(p)).join(', ')}]`;
  });
}

/** "$0.0123": spend is shown to the cent's hundredth, the unit model prices move in. */
export function formatUsd(usd: number): string {
  return `$${usd.toFixed(4)}`;
}

function sourceLink(c: { title: string; url: string }, i: number): string {
  // `|` and `>` would end a link label early; titles are escaped like any other text.
  const title = escapeMrkdwn(c.title.replace(/[|\n]/g, ' ').trim() || 'Untitled');
  return /^https?:\/\//.test(c.url) ? `[${i + 1}] <${c.url}|${title}>` : `[${i + 1}] ${title}`;
}

/** Options of {@link answerMessage}. */
export interface AnswerContext {
  /** 'channel': answered from what every member may read (said under the answer). */
  scope: 'channel' | 'private';
  /** Prefix line, e.g. where the private answer's question was asked. */
  intro?: string;
}

/** An answer: text with numbered citations, the sources as links, and what it cost. */
export function answerMessage(result: AskResult, ctx: AnswerContext): SlackText {
  const body = escapeMrkdwn(numberCitations(result));
  const { answer, citations } = result;
  const blocks: Record<string, unknown>[] = [];
  if (ctx.intro !== undefined) blocks.push(section(ctx.intro));
  blocks.push(...sections(body));
  if (citations.length > 0) blocks.push(context(`*Sources:* ${citations.map(sourceLink).join('  ·  ')}`));
  const how = answer.mode === 'extractive' ? 'extractive, no language model' : `${escapeMrkdwn(`${answer.provider}/${answer.model}`)}`;
  const notes = [`Spent ${formatUsd(answer.usage.usd)} (${how})`];
  if (answer.partial) notes.push('stopped early: a budget for this question ran out');
  notes.push(ctx.scope === 'channel' ? 'answered only from sources everyone in this conversation can read' : 'answered from sources you can read');
  blocks.push(context(notes.join('  ·  ')));
  const fallback = `${ctx.intro === undefined ? '' : `${ctx.intro}\n`}${body}`;
  return { text: fallback.length > 3000 ? `${fallback.slice(0, 2999)}…` : fallback, blocks };
}

const plain = (text: string): SlackText => ({ text, blocks: [section(text)] });

/** To an asker who is unlinked or deactivated: one sentence for both (the audit says which). */
export function refusalMessage(): SlackText {
  return plain(
    "Sorry, I can't answer questions for your account. I only answer people with an active company account " +
      'linked to this Slack workspace. If you think this is a mistake, please contact your Astry administrator.',
  );
}

export function rateLimitedMessage(retryAfterSeconds: number): SlackText {
  const wait = retryAfterSeconds < 90 ? `${retryAfterSeconds} seconds` : `${Math.ceil(retryAfterSeconds / 60)} minutes`;
  return plain(`You're asking faster than I can keep up with. Please try again in about ${wait}.`);
}

/** The worker's BUDGET_EXHAUSTED message says which cap was reached. */
export function budgetMessage(detail: string): SlackText {
  return plain(`You've reached your question budget (${escapeMrkdwn(detail)}). Nothing was charged for this question.`);
}

export function emptyQuestionMessage(): SlackText {
  return plain('Ask me a question after mentioning me, for example: _@Astry what did we decide about the launch date?_');
}

export function tooLongMessage(max: number): SlackText {
  return plain(`That question is too long for me (over ${max} characters). Could you shorten it?`);
}

export function timeoutMessage(): SlackText {
  return plain("I couldn't finish answering that in time. Please try again in a moment, or ask a narrower question.");
}

export function unavailableMessage(): SlackText {
  return plain("I can't answer questions right now because my secure answering service is unavailable. Please try again later.");
}

/** Anything unexpected: a reference the administrator can find in the logs. */
export function errorMessage(reference: string): SlackText {
  return plain(`Something went wrong on my side and I couldn't answer. Please try again in a minute. (reference: ${reference})`);
}

/** In the thread: who is in the conversation could not be established, so nothing was posted for everyone. */
export function audienceUnknownMessage(): SlackText {
  return plain(
    "I can't answer this here yet: someone in this conversation is new to me, so I can't tell which sources everyone here may read.",
  );
}

function offerBlocks(text: string, offerId: string, button: string): SlackText {
  return {
    text,
    blocks: [
      section(text),
      {
        type: 'actions',
        block_id: 'astry_offer',
        elements: [{ type: 'button', action_id: PRIVATE_ANSWER_ACTION, text: { type: 'plain_text', text: button }, value: offerId }],
      },
    ],
  };
}

/** Ephemeral, to the asker only: the channel answer left out sources they may read. */
export function withheldOffer(withheld: number, offerId: string): SlackText {
  const sources = withheld === 1 ? '1 source you can read' : `${withheld} sources you can read`;
  return offerBlocks(
    `Only you can see this: my answer above leaves out ${sources}, because not everyone in this conversation may read ${withheld === 1 ? 'it' : 'them'}. ` +
      'I can send you the full answer in a direct message.',
    offerId,
    'Send me the full answer privately',
  );
}

/** Ephemeral, to the asker only, when nothing could be answered for the whole conversation. */
export function privateOnlyOffer(offerId: string): SlackText {
  return offerBlocks('Only you can see this: I can answer you privately, from the sources you can read.', offerId, 'Answer me privately');
}

export function offerExpiredMessage(): SlackText {
  return plain('That offer has expired or was already used. Ask me again in a direct message and I will answer from everything you can read.');
}

/** Opens the private answer sent by DM. */
export function privateIntro(channelId: string): string {
  return `Here is the full answer to your question in <#${channelId}>, from all the sources you can read:`;
}
