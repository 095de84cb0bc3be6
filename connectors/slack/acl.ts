/**
 * Who may read what, mirrored from Slack. Pure functions. Principals: one group per channel
 * (`slack:<team>:channel:<id>`, its current active human members) and one special
 * (`slack:<team>:members`, every active full member of the workspace).
 */
import type { GroupMembers, PrincipalRef, SourceIdentity } from '../types.ts';
import type { SlackChannel } from './schemas.ts';

/** Every active, non-guest, internal human of workspace `teamId`. */
export function membersSpecial(teamId: string): PrincipalRef {
  return { kind: 'special', key: `slack:${teamId}:members` };
}

/** The current active human members of one channel. */
export function channelGroup(teamId: string, channelId: string): PrincipalRef {
  return { kind: 'group', key: `slack:${teamId}:channel:${channelId}` };
}

/**
 * Who may read a channel's messages. Public: every full member of the workspace (Slack lets them
 * open it without joining) plus its members (the only way guests and externals get in). Private,
 * Slack Connect private, or once-public-now-private: its members only, history included, because
 * Slack shows a private channel's whole history to its current members. DMs and group DMs: nobody.
 */
export function channelAcl(channel: SlackChannel, teamId: string): PrincipalRef[] {
  if (channel.isDirect) return [];
  const group = channelGroup(teamId, channel.id);
  return channel.isPrivate ? [group] : [membersSpecial(teamId), group];
}

/**
 * Who may read a file: the union of the ACLs of the visible channels it is currently shared in.
 * Channels the bot cannot see and DMs grant nothing; [] means "shared nowhere we index" (the caller
 * deletes the document).
 */
export function fileAcl(
  sharedIn: readonly string[],
  visible: ReadonlyMap<string, SlackChannel>,
  teamId: string,
): PrincipalRef[] {
  const byKey = new Map<string, PrincipalRef>();
  for (const channelId of sharedIn) {
    const channel = visible.get(channelId);
    if (channel === undefined) continue;
    for (const principal of channelAcl(channel, teamId)) byKey.set(principal.key, principal);
  }
  return [...byKey.values()];
}

/** Active humans (not bots, not deactivated: a deactivated user still listed as member grants nothing). */
function grantable(identity: SourceIdentity): boolean {
  return identity.active && identity.kind !== 'bot';
}

function uniqueUsers(identities: Iterable<SourceIdentity>): PrincipalRef[] {
  const byKey = new Map<string, PrincipalRef>();
  for (const identity of identities) if (grantable(identity)) byKey.set(identity.user.key, identity.user);
  return [...byKey.values()];
}

/** A channel and the user ids conversations.members listed for it. */
export interface ChannelMembership {
  channel: SlackChannel;
  memberIds: readonly string[];
}

/**
 * The member lists of the workspace special and of each given channel's group. Member ids without
 * an identity (an external not yet resolved with users.info) are dropped: resolve them first, see
 * unresolvedMemberIds. Pass only channels whose membership should be refreshed (the caller skips
 * archived channels to freeze their ACL).
 */
export function groupMembers(
  memberships: readonly ChannelMembership[],
  identities: readonly SourceIdentity[],
  team: { teamId: string; domain: string },
): GroupMembers[] {
  const byUserId = new Map(identities.map((i) => [i.sourceUserId, i]));
  const special: GroupMembers = {
    group: membersSpecial(team.teamId),
    displayName: `All members of Slack ${team.domain}`,
    members: uniqueUsers(identities.filter((i) => i.kind === 'member')),
  };
  const channels = memberships
    .filter((m) => !m.channel.isDirect)
    .map(
      (m): GroupMembers => ({
        group: channelGroup(team.teamId, m.channel.id),
        displayName: `Slack #${m.channel.name}`,
        members: uniqueUsers(m.memberIds.flatMap((id) => byUserId.get(id) ?? [])),
      }),
    );
  return [special, ...channels];
}

/** Member ids with no known identity: the Slack Connect externals to resolve with users.info. */
export function unresolvedMemberIds(
  memberships: readonly ChannelMembership[],
  identities: readonly SourceIdentity[],
): string[] {
  const known = new Set(identities.map((i) => i.sourceUserId));
  const unknown = new Set<string>();
  for (const m of memberships) for (const id of m.memberIds) if (!known.has(id)) unknown.add(id);
  return [...unknown];
}
