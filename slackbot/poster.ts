/** What the bot writes to Slack, through the real WebClient (connectors/slack/client.ts). */
import { z } from 'zod';
import { SlackApi, type SlackApiOptions } from '../connectors/slack/client.ts';
import type { SlackText } from './format.ts';

// https://docs.slack.dev/reference/methods/chat.postMessage
const PostMessageSchema = z.object({ ok: z.literal(true), channel: z.string(), ts: z.string() });
// https://docs.slack.dev/reference/methods/chat.postEphemeral
const PostEphemeralSchema = z.object({ ok: z.literal(true), message_ts: z.string() });
// https://docs.slack.dev/reference/methods/conversations.open
const OpenSchema = z.object({ ok: z.literal(true), channel: z.object({ id: z.string().min(1) }) });

/** Where a message goes: a conversation, optionally a thread in it. */
export interface Place {
  channel: string;
  threadTs?: string | undefined;
}

/** Posts, ephemerals and DMs. Failures are AstryErrors (SOURCE_*, NOT_FOUND) from the shared client. */
export class SlackPoster {
  readonly #api: SlackApi;

  constructor(options: SlackApiOptions) {
    this.#api = new SlackApi(options);
  }

  /** Posts in a conversation (in the thread, if any); returns the message ts. */
  async post(place: Place, message: SlackText): Promise<string> {
    const { ts } = await this.#api.call('chat.postMessage', {
      channel: place.channel,
      ...(place.threadTs === undefined ? {} : { thread_ts: place.threadTs }),
      text: message.text,
      blocks: message.blocks,
      // Why: sources are Slack archive links; unfurling them would paste their content under the answer.
      unfurl_links: false,
      unfurl_media: false,
    }, PostMessageSchema);
    return ts;
  }

  /** Shows `user` alone a message in a conversation (in the thread, if any). */
  async ephemeral(place: Place, user: string, message: SlackText): Promise<void> {
    await this.#api.call('chat.postEphemeral', {
      channel: place.channel,
      user,
      ...(place.threadTs === undefined ? {} : { thread_ts: place.threadTs }),
      text: message.text,
      blocks: message.blocks,
    }, PostEphemeralSchema);
  }

  /** The bot's DM conversation with `user`, opened if needed. */
  async openDm(user: string): Promise<string> {
    const { channel } = await this.#api.call('conversations.open', { users: user }, OpenSchema);
    return channel.id;
  }
}
