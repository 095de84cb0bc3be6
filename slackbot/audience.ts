/**
 * Who will see an answer posted in a conversation: its current members, read from Slack at ask time
 * (not from the last sync: someone may have joined a minute ago), mapped to principals.
 */
import type { SlackConnector } from '../connectors/slack/connector.ts';
import type { Queryable } from '../db/pool.ts';

/** The audience of one conversation. */
export interface ConversationAudience {
  /** Principals of every current member who can read Slack (the asker included): humans, active, known. */
  principalIds: number[];
  /**
   * Active human members Astry has no identity for yet (they joined Slack after the last sync). What
   * they may read is unknown, so no document can be proven readable by them.
   */
  unknown: string[];
}

/**
 * The audience of `channelId`. Counted: every active human member, guests and Slack Connect externals
 * included, each as the principal their Slack identity links to (an external's own Slack principal).
 * Not counted: bots and deactivated accounts (they cannot read the answer).
 */
export async function conversationAudience(
  db: Queryable,
  slack: Pick<SlackConnector, 'members' | 'resolveExternal'>,
  ids: { workspaceId: string; connectionId: string },
  channelId: string,
  askerPrincipalId: number,
): Promise<ConversationAudience> {
  const memberIds = await slack.members(channelId);
  const { rows } = await db.query<{ source_user_id: string; principal_id: number; active: boolean; identity_kind: string }>(
    `SELECT source_user_id, principal_id, active, identity_kind FROM source_identities
     WHERE connection_id = $1 AND workspace_id = $2 AND source_user_id = ANY($3::text[])`,
    [ids.connectionId, ids.workspaceId, memberIds],
  );
  const known = new Map(rows.map((r) => [r.source_user_id, r]));
  const principals = new Set<number>([askerPrincipalId]);
  const unknown: string[] = [];
  for (const id of memberIds) {
    const row = known.get(id);
    if (row !== undefined) {
      if (row.active && row.identity_kind !== 'bot') principals.add(row.principal_id);
      continue;
    }
    // Not synced yet: ask Slack whether this is a person who can read the channel at all.
    const identity = await slack.resolveExternal(id);
    if (identity === null || !identity.active || identity.kind === 'bot') continue;
    unknown.push(id);
  }
  return { principalIds: [...principals].sort((a, b) => a - b), unknown };
}
