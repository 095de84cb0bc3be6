/** Slack users -> source identities and canonical user principals. Pure. */
import type { IdentityKind, PrincipalRef, SourceIdentity } from '../types.ts';
import type { SlackUser } from './schemas.ts';

/** Slack's built-in bot: listed by users.list with is_bot=false. */
const SLACKBOT_ID = 'USLACKBOT';

/** How Slack classifies the user, seen from workspace `teamId`. */
export function identityKind(user: SlackUser, teamId: string): IdentityKind {
  if (user.is_bot || user.is_app_user || user.id === SLACKBOT_ID) return 'bot';
  // A Slack Connect user keeps their home team's id; users.list of our team never grants them more.
  if (user.team_id !== teamId) return 'external';
  if (user.is_ultra_restricted) return 'guest_single';
  if (user.is_restricted) return 'guest_multi';
  return 'member';
}

/** The name people know the user by: display name, then real name, then handle. */
export function displayNameOf(user: SlackUser): string {
  const candidates = [user.profile.display_name, user.profile.real_name, user.real_name, user.name];
  return candidates.find((c) => typeof c === 'string' && c.trim() !== '')?.trim() ?? user.id;
}

/**
 * The canonical user a Slack account resolves to: `email:<lowercased>` for our own workspace's
 * people with a profile email (links them across sources), else `slack:<home team>:<user id>`.
 * Why externals never link by email: their email is asserted by a foreign workspace we cannot
 * verify, so `mallory@ourcompany.com` in a partner's Slack must not become our canonical employee.
 */
export function userPrincipal(user: SlackUser, teamId: string): PrincipalRef {
  const kind = identityKind(user, teamId);
  const email = user.profile.email?.trim().toLowerCase();
  if (kind !== 'external' && kind !== 'bot' && email !== undefined && email !== '') {
    return { kind: 'user', key: `email:${email}` };
  }
  return { kind: 'user', key: `slack:${user.team_id}:${user.id}` };
}

/** A Slack user as a SourceIdentity of workspace `teamId`; deactivated users are inactive. */
export function toIdentity(user: SlackUser, teamId: string): SourceIdentity {
  const email = user.profile.email?.trim();
  return {
    sourceUserId: user.id,
    displayName: displayNameOf(user),
    email: email === undefined || email === '' ? null : email,
    kind: identityKind(user, teamId),
    active: !user.deleted,
    user: userPrincipal(user, teamId),
  };
}

/** Slack user id -> display name, for rendering authors and mentions. */
export function namesOf(identities: readonly SourceIdentity[]): Map<string, string> {
  return new Map(identities.map((i) => [i.sourceUserId, i.displayName]));
}
