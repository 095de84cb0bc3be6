/**
 * The Slack connector: reads identities, channels, memberships, messages and files through the real
 * @slack/web-api WebClient. Stateless apart from the client; the sync decides what to fetch when.
 *
 * Scope: channels the bot is a member of. Why not conversations.join: joining is a visible act in
 * the customer's workspace and only works for public channels; admins invite the bot where it should
 * read, exactly as they would for any Slack app. Required bot scopes: channels:read, groups:read,
 * channels:history, groups:history, users:read, users:read.email, files:read.
 */
import type { RetryOptions } from '@slack/web-api';
import { AstryError, isAstryError } from '../../core/errors.ts';
import type { ItemError, SourceDocument, SourceIdentity } from '../types.ts';
import { fileAcl } from './acl.ts';
import { SlackApi } from './client.ts';
import { downloadFile, fileDocument, sharedChannelIds } from './files.ts';
import { toIdentity } from './identities.ts';
import type { SlackTeam } from './render.ts';
import {
  AuthTestSchema,
  ConversationsListSchema,
  ConversationsMembersSchema,
  FilesInfoSchema,
  MessagesPageSchema,
  UsersInfoSchema,
  UsersListSchema,
  type SlackChannel,
  type SlackFile,
  type SlackMessage,
} from './schemas.ts';

/** Options of SlackConnector; validated by the constructor (CONFIG_INVALID). */
export interface SlackConnectorOptions {
  /** Bot token (`xoxb-…`). */
  token: string;
  /** Web API base URL, e.g. `https://slack.com/api/`; an emulator's in tests. */
  apiUrl: string;
  /** Largest file downloaded, in bytes; a bigger body aborts with TOO_LARGE while streaming. */
  maxFileBytes: number;
  /** WebClient retry policy; default @slack/web-api's tenRetriesInAboutThirtyMinutes. Tests pass a small one. */
  retryConfig?: RetryOptions;
}

/** conversations.replies of several threads: the ones that worked, and one ItemError per one that did not. */
export interface RepliesResult {
  byThreadTs: Map<string, SlackMessage[]>;
  errors: ItemError[];
}

function validate(options: SlackConnectorOptions): URL {
  if (options.token.trim() === '') throw new AstryError('CONFIG_INVALID', 'Slack token is empty');
  if (!Number.isSafeInteger(options.maxFileBytes) || options.maxFileBytes < 1) {
    throw new AstryError('CONFIG_INVALID', 'Slack maxFileBytes must be a positive integer');
  }
  try {
    return new URL(options.apiUrl);
  } catch (cause) {
    throw new AstryError('CONFIG_INVALID', `Slack apiUrl is not a URL: ${options.apiUrl}`, { cause });
  }
}

/** Reads one Slack workspace with a bot token. */
export class SlackConnector {
  readonly #api: SlackApi;
  readonly #token: string;
  readonly #maxFileBytes: number;
  readonly #apiOrigin: string;
  #team: Promise<SlackTeam> | undefined;

  constructor(options: SlackConnectorOptions) {
    this.#apiOrigin = validate(options).origin;
    this.#token = options.token;
    this.#maxFileBytes = options.maxFileBytes;
    this.#api = new SlackApi(options);
  }

  /** The workspace and the bot's own ids (remembered once it succeeds). */
  team(): Promise<SlackTeam> {
    this.#team ??= this.#fetchTeam().catch((err: unknown) => {
      this.#team = undefined;
      throw err;
    });
    return this.#team;
  }

  async #fetchTeam(): Promise<SlackTeam> {
    // https://docs.slack.dev/reference/methods/auth.test
    const auth = await this.#api.call('auth.test', {}, AuthTestSchema);
    const domain = new URL(auth.url).hostname.split('.')[0] ?? '';
    if (domain === '') throw new AstryError('SOURCE_BAD_DATA', `Slack auth.test url has no workspace: ${auth.url}`);
    return { teamId: auth.team_id, domain, botUserId: auth.user_id, botId: auth.bot_id ?? undefined };
  }

  /** Every account users.list shows, deactivated ones included (inactive). Externals are not listed: see resolveExternal. */
  async identities(): Promise<SourceIdentity[]> {
    const { teamId } = await this.team();
    const identities: SourceIdentity[] = [];
    // https://docs.slack.dev/reference/methods/users.list
    for await (const page of this.#api.pages('users.list', {}, UsersListSchema)) {
      for (const user of page.members) identities.push(toIdentity(user, teamId));
    }
    return identities;
  }

  /** A channel member users.list does not show (a Slack Connect external), or null if Slack does not know them. */
  async resolveExternal(userId: string): Promise<SourceIdentity | null> {
    const { teamId } = await this.team();
    try {
      // https://docs.slack.dev/reference/methods/users.info
      const { user } = await this.#api.call('users.info', { user: userId }, UsersInfoSchema);
      return toIdentity(user, teamId);
    } catch (err) {
      if (isAstryError(err, 'NOT_FOUND')) return null;
      throw err;
    }
  }

  /** Public and private channels the bot is a member of, archived ones included (see isArchived). Never DMs. */
  async channels(): Promise<SlackChannel[]> {
    const channels: SlackChannel[] = [];
    // https://docs.slack.dev/reference/methods/conversations.list
    const args = { types: 'public_channel,private_channel', exclude_archived: false };
    for await (const page of this.#api.pages('conversations.list', args, ConversationsListSchema)) {
      // Why filter again: DMs must never be indexed even if the API returned one despite `types`.
      for (const channel of page.channels) if (channel.isMember && !channel.isDirect) channels.push(channel);
    }
    return channels;
  }

  /** The user ids of a channel's current members (deactivated users included, as Slack lists them). */
  async members(channelId: string): Promise<string[]> {
    const members: string[] = [];
    // https://docs.slack.dev/reference/methods/conversations.members
    for await (const page of this.#api.pages('conversations.members', { channel: channelId }, ConversationsMembersSchema)) {
      members.push(...page.members);
    }
    return members;
  }

  /**
   * Pages of a channel's top-level messages newer than `oldest` (exclusive), newest first as Slack
   * returns them. A failure throws from the iteration: the caller records it for this channel.
   */
  async *history(channelId: string, opts: { oldest?: string } = {}): AsyncGenerator<SlackMessage[], void, undefined> {
    // https://docs.slack.dev/reference/methods/conversations.history
    const args = { channel: channelId, ...(opts.oldest === undefined ? {} : { oldest: opts.oldest }) };
    for await (const page of this.#api.pages('conversations.history', args, MessagesPageSchema)) {
      yield page.messages;
    }
  }

  /** A thread's messages, parent first, optionally only those newer than `oldest`. Throws per thread. */
  async replies(channelId: string, threadTs: string, opts: { oldest?: string } = {}): Promise<SlackMessage[]> {
    const messages: SlackMessage[] = [];
    // https://docs.slack.dev/reference/methods/conversations.replies
    const args = { channel: channelId, ts: threadTs, ...(opts.oldest === undefined ? {} : { oldest: opts.oldest }) };
    for await (const page of this.#api.pages('conversations.replies', args, MessagesPageSchema)) {
      messages.push(...page.messages);
    }
    return messages;
  }

  /**
   * Replies of several threads, one after the other. Why sequential: conversations.replies is
   * heavily rate limited, and parallel calls would only queue behind each other's Retry-After.
   * An expected failure of one thread becomes an ItemError. Auth and exhausted rate limits propagate:
   * they hit every thread alike, and the run should stop and retry later from its cursor.
   */
  async collectReplies(channelId: string, threadTs: readonly string[]): Promise<RepliesResult> {
    const result: RepliesResult = { byThreadTs: new Map(), errors: [] };
    for (const ts of threadTs) {
      try {
        result.byThreadTs.set(ts, await this.replies(channelId, ts));
      } catch (err) {
        if (!(err instanceof AstryError) || err.code === 'SOURCE_AUTH_FAILED' || err.code === 'SOURCE_RATE_LIMITED') {
          throw err;
        }
        result.errors.push({ itemId: `thread:${channelId}:${ts}`, code: err.code, message: err.message });
      }
    }
    return result;
  }

  /** Where a file is currently shared (public and private channels, DMs ignored), or null if it is gone. */
  async fileShares(fileId: string): Promise<{ channels: string[]; file: SlackFile } | null> {
    try {
      // https://docs.slack.dev/reference/methods/files.info
      const { file } = await this.#api.call('files.info', { file: fileId }, FilesInfoSchema);
      return { channels: sharedChannelIds(file), file };
    } catch (err) {
      if (isAstryError(err, 'NOT_FOUND')) return null;
      throw err;
    }
  }

  /**
   * A file's document, readable by the union of the visible channels it is shared in; null when it
   * is gone or shared nowhere visible (the caller deletes it).
   */
  async fileDocument(fileId: string, visible: ReadonlyMap<string, SlackChannel>): Promise<SourceDocument | null> {
    const shares = await this.fileShares(fileId);
    if (shares === null) return null;
    const { teamId } = await this.team();
    const acl = fileAcl(shares.channels, visible, teamId);
    const container = shares.channels.find((id) => visible.has(id));
    if (acl.length === 0 || container === undefined) return null;
    return fileDocument(shares.file, container, acl, () => this.download(shares.file));
  }

  /** The bytes of a file, at most maxFileBytes (TOO_LARGE beyond). */
  download(file: SlackFile): Promise<Buffer> {
    const url = file.url_private_download ?? file.url_private;
    if (url === undefined) {
      return Promise.reject(new AstryError('SOURCE_BAD_DATA', `Slack file ${file.id} has no download url`));
    }
    return downloadFile({
      url,
      token: this.#token,
      maxBytes: this.#maxFileBytes,
      allowedOrigins: new Set([this.#apiOrigin]),
      mimeType: file.mimetype,
    });
  }
}
