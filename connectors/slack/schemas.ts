/**
 * zod schemas of every Slack Web API response the connector reads. Types come from z.infer; unknown
 * fields are stripped, fields we rely on are required, flags Slack omits when false default to false.
 * Objects: https://docs.slack.dev/reference/objects/
 */
import { z } from 'zod';

/** Cursor pagination metadata: '' or absent means the last page. https://docs.slack.dev/apis/web-api/pagination */
const ResponseMetadata = z.object({ next_cursor: z.string().optional() }).optional();

/** A Slack timestamp `<seconds>.<micro>`: the id of a message within its channel. */
export const TsSchema = z.string().regex(/^\d+\.\d+$/, 'a Slack ts like 1700000000.000100');

/** https://docs.slack.dev/reference/methods/auth.test */
export const AuthTestSchema = z.object({
  ok: z.literal(true),
  team_id: z.string().min(1),
  user_id: z.string().min(1),
  bot_id: z.string().nullish(),
  url: z.url(),
});

/** https://docs.slack.dev/reference/objects/user-object */
export const UserSchema = z.object({
  id: z.string().min(1),
  /** The user's home team: a Slack Connect external carries its own team's id. */
  team_id: z.string().min(1),
  name: z.string().default(''),
  real_name: z.string().nullish(),
  deleted: z.boolean().default(false),
  is_bot: z.boolean().default(false),
  is_app_user: z.boolean().default(false),
  /** Multi-channel guest. */
  is_restricted: z.boolean().default(false),
  /** Single-channel guest. */
  is_ultra_restricted: z.boolean().default(false),
  profile: z
    .object({
      email: z.string().nullish(),
      display_name: z.string().nullish(),
      real_name: z.string().nullish(),
    })
    .default({}),
});
export type SlackUser = z.infer<typeof UserSchema>;

/** https://docs.slack.dev/reference/methods/users.list */
export const UsersListSchema = z.object({
  ok: z.literal(true),
  members: z.array(UserSchema),
  response_metadata: ResponseMetadata,
});

/** https://docs.slack.dev/reference/methods/users.info */
export const UsersInfoSchema = z.object({ ok: z.literal(true), user: UserSchema });

/**
 * https://docs.slack.dev/reference/objects/conversation-object, normalised to the flags the ACL
 * rules read. `is_group` is the legacy name of a private channel and still set by Slack.
 */
export const ChannelSchema = z
  .object({
    id: z.string().min(1),
    name: z.string().optional(),
    is_group: z.boolean().default(false),
    is_im: z.boolean().default(false),
    is_mpim: z.boolean().default(false),
    is_private: z.boolean().default(false),
    is_archived: z.boolean().default(false),
    is_ext_shared: z.boolean().default(false),
    is_member: z.boolean().default(false),
  })
  .transform((c) => ({
    id: c.id,
    name: c.name ?? c.id,
    isPrivate: c.is_private || c.is_group || c.is_mpim,
    isArchived: c.is_archived,
    isExtShared: c.is_ext_shared,
    isMember: c.is_member,
    /** A DM or group DM: never indexed. */
    isDirect: c.is_im || c.is_mpim,
  }));
/** A channel as the connector sees it. */
export type SlackChannel = z.infer<typeof ChannelSchema>;

/** https://docs.slack.dev/reference/methods/conversations.list */
export const ConversationsListSchema = z.object({
  ok: z.literal(true),
  channels: z.array(ChannelSchema),
  response_metadata: ResponseMetadata,
});

/** https://docs.slack.dev/reference/methods/conversations.members */
export const ConversationsMembersSchema = z.object({
  ok: z.literal(true),
  members: z.array(z.string().min(1)),
  response_metadata: ResponseMetadata,
});

/** A file as embedded in a message: only its id matters, files.info is the authority on the rest. */
const MessageFileSchema = z.object({
  id: z.string().min(1),
  name: z.string().nullish(),
  title: z.string().nullish(),
});

/** https://docs.slack.dev/reference/objects/message-object */
export const MessageSchema = z.object({
  subtype: z.string().optional(),
  ts: TsSchema,
  user: z.string().optional(),
  bot_id: z.string().nullish(),
  username: z.string().optional(),
  text: z.string().default(''),
  thread_ts: TsSchema.optional(),
  reply_count: z.number().int().nonnegative().default(0),
  /** On a thread parent: the ts of its newest reply (tells an incremental run the thread changed). */
  latest_reply: TsSchema.optional(),
  edited: z.object({ ts: TsSchema }).optional(),
  hidden: z.boolean().optional(),
  user_profile: z
    .object({ display_name: z.string().nullish(), real_name: z.string().nullish() })
    .optional(),
  bot_profile: z.object({ name: z.string().nullish() }).nullish(),
  files: z.array(MessageFileSchema).default([]),
});
export type SlackMessage = z.infer<typeof MessageSchema>;

/** https://docs.slack.dev/reference/methods/conversations.history and conversations.replies */
export const MessagesPageSchema = z.object({
  ok: z.literal(true),
  messages: z.array(MessageSchema),
  response_metadata: ResponseMetadata,
});

/** https://docs.slack.dev/reference/objects/file-object */
export const FileSchema = z.object({
  id: z.string().min(1),
  name: z.string().nullish(),
  title: z.string().nullish(),
  mimetype: z.string().min(1).default('application/octet-stream'),
  /** The uploader: the file's author, for erasure provenance. */
  user: z.string().optional(),
  size: z.number().int().nonnegative(),
  created: z.number().int().nonnegative(),
  timestamp: z.number().int().nonnegative().optional(),
  updated: z.number().int().nonnegative().optional(),
  url_private: z.url().optional(),
  url_private_download: z.url().optional(),
  permalink: z.url().optional(),
  /** Public channels the file is currently shared in. */
  channels: z.array(z.string()).default([]),
  /** Private channels (and group DMs) the file is currently shared in. */
  groups: z.array(z.string()).default([]),
  /** DMs: ignored, DMs are never indexed. */
  ims: z.array(z.string()).default([]),
  /** Newer per-channel share details; its keys are channel ids. */
  shares: z
    .object({
      public: z.record(z.string(), z.unknown()).optional(),
      private: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
});
export type SlackFile = z.infer<typeof FileSchema>;

/** https://docs.slack.dev/reference/methods/files.info */
export const FilesInfoSchema = z.object({ ok: z.literal(true), file: FileSchema });
