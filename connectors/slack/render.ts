/** Slack messages -> plain text lines. Pure. https://docs.slack.dev/messaging/formatting-message-text */
import type { SlackMessage } from './schemas.ts';

/** Who we are in the workspace, from auth.test. */
export interface SlackTeam {
  teamId: string;
  /** Workspace subdomain: `acme` in https://acme.slack.com. */
  domain: string;
  /** The bot's own user id: its messages are never indexed. */
  botUserId: string;
  /** The bot's bot id (`B…`), when auth.test names one. */
  botId?: string | undefined;
}

/** What rendering needs besides the messages. */
export interface RenderContext {
  team: SlackTeam;
  /** Slack user id -> display name (see identities.namesOf). */
  names: ReadonlyMap<string, string>;
  /**
   * True for people erased from Astry (a suppression rule): their messages are left out and
   * mentions of them are rendered as `@[erased]`. Absent: nobody is suppressed.
   */
  suppressed?: ((userId: string) => boolean) | undefined;
}

/** Subtypes that record an event, not something someone said. */
const NO_CONTENT_SUBTYPES = new Set([
  'channel_join',
  'channel_leave',
  'group_join',
  'group_leave',
  'channel_archive',
  'channel_unarchive',
  'group_archive',
  'group_unarchive',
  'channel_name',
  'group_name',
  'pinned_item',
  'unpinned_item',
  'tombstone',
  'joiner_notification',
]);

/** The Date of a Slack ts (`<seconds>.<micro>`), to the millisecond. */
export function tsToDate(ts: string): Date {
  return new Date(Math.floor(Number(ts) * 1000));
}

/** The UTC calendar day of a ts, `YYYY-MM-DD`. */
export function utcDay(ts: string): string {
  return tsToDate(ts).toISOString().slice(0, 10);
}

/** Compares Slack ts strings numerically (they are not fixed width). */
export function compareTs(a: string, b: string): number {
  return Number(a) - Number(b);
}

/** True when the message says something worth indexing. */
export function hasContent(message: SlackMessage, team: SlackTeam): boolean {
  if (message.hidden === true) return false;
  if (message.subtype !== undefined && NO_CONTENT_SUBTYPES.has(message.subtype)) return false;
  // Our own bot's answers are derived from indexed content; indexing them would echo it back.
  if (message.user !== undefined && message.user === team.botUserId) return false;
  if (team.botId !== undefined && message.bot_id === team.botId) return false;
  return message.text.trim() !== '' || message.files.length > 0;
}

function authorOf(message: SlackMessage, names: ReadonlyMap<string, string>): string {
  const known = message.user === undefined ? undefined : names.get(message.user);
  const candidates = [
    known,
    message.user_profile?.display_name,
    message.user_profile?.real_name,
    message.username,
    message.bot_profile?.name,
    message.user,
  ];
  return candidates.find((c) => typeof c === 'string' && c.trim() !== '')?.trim() ?? 'unknown';
}

/** Slack mrkdwn -> plain text: mentions resolved to names, links and specials spelled out. */
export function plainText(text: string, names: ReadonlyMap<string, string>): string {
  return text
    .replace(/<@([UW][A-Z0-9]+)(?:\|([^>]*))?>/g, (_m, id: string, label: string | undefined) => {
      return `@${names.get(id) ?? (label !== undefined && label !== '' ? label : id)}`;
    })
    .replace(/<#([CG][A-Z0-9]+)(?:\|([^>]*))?>/g, (_m, id: string, label: string | undefined) => {
      return `#${label !== undefined && label !== '' ? label : id}`;
    })
    .replace(/<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>/g, (_m, label: string | undefined) => label ?? '@group')
    .replace(/<!(here|channel|everyone)(?:\|[^>]*)?>/g, '@$1')
    .replace(/<((?:https?|mailto):[^|>]+)(?:\|([^>]+))?>/g, (_m, url: string, label: string | undefined) => {
      return label === undefined || label === url ? url : `${label} (${url})`;
    })
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** One message as `[YYYY-MM-DD HH:MM] <display name>: text`, shared files named at the end. */
export function renderMessage(message: SlackMessage, names: ReadonlyMap<string, string>): string {
  const when = tsToDate(message.ts).toISOString();
  const stamp = `${when.slice(0, 10)} ${when.slice(11, 16)}`;
  const files = message.files
    .map((f) => f.title ?? f.name)
    .filter((n): n is string => typeof n === 'string' && n !== '')
    .map((n) => ` [file: ${n}]`)
    .join('');
  const text = plainText(message.text, names).trim();
  return `[${stamp}] ${authorOf(message, names)}: ${text}${files}`;
}

/** The first `count` words of a message, for titles. */
export function firstWords(text: string, count: number): string {
  const words = text.split(/\s+/).filter((w) => w !== '');
  const head = words.slice(0, count).join(' ');
  return words.length > count ? `${head}…` : head;
}
