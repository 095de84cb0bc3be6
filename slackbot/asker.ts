/**
 * Step 1 of a query asked in Slack: the Slack user id -> the canonical, active company user, through
 * the identity linking the connector keeps (source_identities). Everything else is refused.
 */
import type { Queryable } from '../db/pool.ts';

/** Why an asker is refused; the user hears one polite sentence either way, the audit gets the reason. */
export type AskerRefusal = 'unlinked' | 'deactivated';

/**
 * A refusal carries the canonical user when there is one (a deactivated user), so its audit entry can be
 * sealed under their key; `detail` names no one (the audit may keep it in clear).
 */
export type SlackAsker =
  | { ok: true; principalId: number; displayName: string; kind: string }
  | { ok: false; reason: AskerRefusal; detail: string; principalId?: number };

/**
 * Resolves who is asking. Admitted: an active Slack account of this connection linked to a canonical
 * user (`email:` key: an internal account whose email ties it to the company directory) that is active
 * in Astry (the directory / SCIM deactivates there). Refused as unlinked: no identity yet (not synced),
 * bots, and Slack Connect externals or accounts without an email, whose principal is only their Slack
 * account — nobody in our directory vouches for them.
 */
export async function resolveSlackAsker(db: Queryable, ids: { workspaceId: string; connectionId: string }, slackUserId: string): Promise<SlackAsker> {
  const { rows } = await db.query<{ principal_id: number; identity_active: boolean; identity_kind: string; kind: string; key: string; active: boolean; display_name: string }>(
    `SELECT si.principal_id, si.active AS identity_active, si.identity_kind, p.kind, p.key, p.active, p.display_name
     FROM source_identities si JOIN principals p ON p.id = si.principal_id
     WHERE si.connection_id = $1 AND si.workspace_id = $2 AND si.source_user_id = $3`,
    [ids.connectionId, ids.workspaceId, slackUserId],
  );
  const row = rows[0];
  if (row === undefined) return { ok: false, reason: 'unlinked', detail: 'no identity for this Slack user' };
  if (row.identity_kind === 'bot') return { ok: false, reason: 'unlinked', detail: 'a bot' };
  if (row.kind !== 'user' || !row.key.startsWith('email:')) {
    return { ok: false, reason: 'unlinked', detail: `a Slack account (${row.identity_kind}) not linked to a company user` };
  }
  if (!row.identity_active) return { ok: false, reason: 'deactivated', detail: 'deactivated in Slack', principalId: row.principal_id };
  if (!row.active) return { ok: false, reason: 'deactivated', detail: 'deactivated in the directory', principalId: row.principal_id };
  return { ok: true, principalId: row.principal_id, displayName: row.display_name, kind: row.identity_kind };
}
