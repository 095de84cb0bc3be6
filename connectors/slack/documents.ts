/**
 * Slack messages -> documents. Pure. Why threads and days: a thread is one conversation and
 * answers cite it as a whole; loose messages are too short alone, and a channel's day of them is
 * the unit people scroll and Slack links to.
 */
import { createHash } from 'node:crypto';
import type { SourceDocument } from '../types.ts';
import { channelAcl } from './acl.ts';
import { compareTs, firstWords, hasContent, plainText, renderMessage, tsToDate, utcDay, type RenderContext } from './render.ts';
import type { SlackChannel, SlackMessage } from './schemas.ts';
import { bySuppressed, subjectsOf, withoutSuppressed } from './subjects.ts';

/** True when the message opens a thread (replies live in conversations.replies). */
function isThreadParent(message: SlackMessage): boolean {
  return message.reply_count > 0 && (message.thread_ts === undefined || message.thread_ts === message.ts);
}

/** True when the message is a reply that was also sent to the channel: it belongs to its thread. */
function isBroadcastReply(message: SlackMessage): boolean {
  return message.thread_ts !== undefined && message.thread_ts !== message.ts;
}

/** The ts of every thread among `messages`, for conversations.replies. */
export function threadTsOf(messages: readonly SlackMessage[]): string[] {
  return messages.filter(isThreadParent).map((m) => m.ts);
}

/** Ids of the files shared by these messages: each is its own document (see files.ts). */
export function referencedFileIds(messages: Iterable<SlackMessage>): string[] {
  const ids = new Set<string>();
  for (const message of messages) for (const file of message.files) ids.add(file.id);
  return [...ids];
}

/**
 * The `oldest` for an incremental history fetch after `lastTs`: the start of its UTC day. Why: a
 * day document is rebuilt from all of that day's messages, so a run must fetch whole days.
 */
export function historyWindowStart(lastTs: string): string {
  const day = tsToDate(lastTs);
  day.setUTCHours(0, 0, 0, 0);
  // `oldest` is exclusive: one microsecond before midnight keeps a message sent at 00:00:00.000000.
  return `${day.getTime() / 1000 - 1}.999999`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function newest(messages: readonly SlackMessage[]): Date {
  let max = 0;
  for (const m of messages) max = Math.max(max, Number(m.ts), Number(m.edited?.ts ?? 0));
  return new Date(Math.floor(max * 1000));
}

function archiveUrl(ctx: RenderContext, channelId: string): string {
  return `https://${ctx.team.domain}.slack.com/archives/${channelId}`;
}

function textDocument(
  channel: SlackChannel,
  ctx: RenderContext,
  messages: readonly SlackMessage[],
  fields: Pick<SourceDocument, 'sourceId' | 'kind' | 'title' | 'url'>,
): SourceDocument {
  const text = messages.map((m) => renderMessage(m, ctx.names)).join('\n');
  return {
    ...fields,
    containerId: channel.id,
    contentVersion: sha256(text),
    updatedAt: newest(messages),
    acl: channelAcl(channel, ctx.team.teamId),
    content: { type: 'text', text },
    subjects: subjectsOf(messages, ctx),
  };
}

/**
 * The documents of one channel: one per thread (parent + replies), and one per UTC day of loose
 * top-level messages. `repliesByThreadTs` holds conversations.replies per thread ts (the parent may
 * be included); a thread may be listed there without its parent in `messages` (a new reply to an
 * old thread). A thread parent whose replies are missing is omitted: the caller recorded an
 * ItemError for it and keeps the stored version rather than overwriting it with a partial one.
 * `messages` must cover whole UTC days (see historyWindowStart). DMs yield nothing.
 */
export function buildDocuments(
  channel: SlackChannel,
  messages: readonly SlackMessage[],
  repliesByThreadTs: ReadonlyMap<string, readonly SlackMessage[]>,
  ctx: RenderContext,
): SourceDocument[] {
  if (channel.isDirect) return [];
  // Erased people's messages are left out and mentions of them redacted (connectors/slack/subjects.ts).
  const keep = (m: SlackMessage): boolean => hasContent(m, ctx.team) && !bySuppressed(m, ctx);
  ctx = withoutSuppressed(ctx, [...messages, ...[...repliesByThreadTs.values()].flat()]);
  const documents: SourceDocument[] = [];
  const parents = new Map<string, SlackMessage>();
  const days = new Map<string, SlackMessage[]>();
  for (const message of messages) {
    if (isBroadcastReply(message)) continue;
    if (isThreadParent(message) || repliesByThreadTs.has(message.ts)) {
      parents.set(message.ts, message);
      continue;
    }
    if (!keep(message)) continue;
    const day = utcDay(message.ts);
    days.set(day, [...(days.get(day) ?? []), message]);
  }

  const threadTs = new Set([...parents.keys(), ...repliesByThreadTs.keys()]);
  for (const ts of [...threadTs].sort(compareTs)) {
    const replies = repliesByThreadTs.get(ts);
    if (replies === undefined) continue;
    const byTs = new Map<string, SlackMessage>();
    const parent = parents.get(ts);
    if (parent !== undefined) byTs.set(parent.ts, parent);
    for (const reply of replies) byTs.set(reply.ts, reply);
    const thread = [...byTs.values()].filter(keep).sort((a, b) => compareTs(a.ts, b.ts));
    if (thread.length === 0) continue;
    // The first message with content names the thread (a deleted parent leaves a tombstone).
    const opener = thread[0];
    const words = opener === undefined ? '' : firstWords(plainText(opener.text, ctx.names), 8);
    documents.push(
      textDocument(channel, ctx, thread, {
        sourceId: `thread:${channel.id}:${ts}`,
        kind: 'slack_thread',
        title: `#${channel.name} — thread: ${words}`,
        url: `${archiveUrl(ctx, channel.id)}/p${ts.replace('.', '')}`,
      }),
    );
  }

  for (const [day, loose] of [...days].sort(([a], [b]) => a.localeCompare(b))) {
    documents.push(
      textDocument(
        channel,
        ctx,
        loose.sort((a, b) => compareTs(a.ts, b.ts)),
        {
          sourceId: `day:${channel.id}:${day}`,
          kind: 'slack_day',
          title: `#${channel.name} — ${day}`,
          url: archiveUrl(ctx, channel.id),
        },
      ),
    );
  }
  return documents;
}
