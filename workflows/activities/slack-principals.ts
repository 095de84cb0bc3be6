import type { SlackConnector } from '../../connectors/slack/connector.ts';
import { channelAcl, channelGroup, groupMembers, unresolvedMemberIds, type ChannelMembership } from '../../connectors/slack/acl.ts';
import type { SlackChannel } from '../../connectors/slack/schemas.ts';
import type { SourceIdentity } from '../../connectors/types.ts';
import { containersOf, deleteDocuments, documentsInContainer, replaceGrants } from '../../db/documents.ts';
import { inTransaction, type Queryable } from '../../db/pool.ts';
import { ensurePrincipals, principalKey, replaceGroupMembers, upsertIdentities } from '../../db/principals.ts';
import { addRunCounts, deleteCursor } from '../../db/runs.ts';
import { aclHash } from '../../pipeline/ingest.ts';
import type { PrincipalsResult } from '../types.ts';
import type { ActivityDeps } from './deps.ts';

/** Container id under which file documents are stored (their ACL spans channels). */
export const FILES_CONTAINER = 'files';

async function hasStoredMembers(db: Queryable, workspaceId: string, connectionId: string, groupKey: string): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT 1 FROM memberships m JOIN principals p ON p.id = m.group_id
     WHERE p.workspace_id = $1 AND p.kind = 'group' AND p.key = $2 AND m.connection_id = $3 LIMIT 1`,
    [workspaceId, groupKey, connectionId],
  );
  return rows.length > 0;
}

/**
 * Re-reads users, channels and channel members, and applies what changed before any content:
 * memberships (revocations), channel ACLs (public -> private, without re-embedding) and channels
 * the bot lost (their documents are deleted). Archived channels keep their last membership (frozen).
 */
export async function syncSlackPrincipals(
  deps: ActivityDeps,
  slack: SlackConnector,
  ids: { workspaceId: string; connectionId: string; runId: string },
  heartbeat: (detail: unknown) => void,
): Promise<Omit<PrincipalsResult, 'active'>> {
  const team = await slack.team();
  const identities: SourceIdentity[] = await slack.identities();
  const channels: SlackChannel[] = (await slack.channels()).filter((c) => !c.isDirect);
  heartbeat({ phase: 'members' });

  const memberships: ChannelMembership[] = [];
  for (const channel of channels) {
    const frozen = channel.isArchived && (await hasStoredMembers(deps.pool, ids.workspaceId, ids.connectionId, channelGroup(team.teamId, channel.id).key));
    if (frozen) continue;
    memberships.push({ channel, memberIds: await slack.members(channel.id) });
    heartbeat({ phase: 'members', channel: channel.id });
  }
  for (const userId of unresolvedMemberIds(memberships, identities)) {
    const external = await slack.resolveExternal(userId);
    if (external) identities.push(external);
  }

  await inTransaction(deps.pool, async (tx) => {
    await upsertIdentities(tx, ids.workspaceId, ids.connectionId, identities);
    await replaceGroupMembers(tx, ids.workspaceId, ids.connectionId, groupMembers(memberships, identities, team));
  });

  // Channels the bot can no longer see: their documents go (lost access), and so does the cursor.
  const visible = new Set(channels.map((c) => c.id));
  const lost = (await containersOf(deps.pool, ids.connectionId)).filter((c) => c !== FILES_CONTAINER && !visible.has(c));
  let deleted = 0;
  for (const containerId of lost) {
    const docs = await documentsInContainer(deps.pool, ids.connectionId, containerId);
    deleted += await deleteDocuments(deps.pool, ids.connectionId, docs.map((d) => d.sourceId));
    await deleteCursor(deps.pool, ids.connectionId, `channel:${containerId}`);
  }

  // A channel whose grants changed (turned private) gets new grants on every stored document.
  let aclUpdated = 0;
  for (const channel of channels) {
    const acl = channelAcl(channel, team.teamId);
    const hash = aclHash({ acl });
    const stale = (await documentsInContainer(deps.pool, ids.connectionId, channel.id)).filter((d) => d.aclHash !== hash);
    if (stale.length === 0) continue;
    const principalIds = await ensurePrincipals(deps.pool, ids.workspaceId, acl);
    const grants = acl.flatMap((ref) => {
      const principalId = principalIds.get(principalKey(ref));
      return principalId === undefined ? [] : [{ principalId }];
    });
    for (const doc of stale) {
      await inTransaction(deps.pool, (tx) => replaceGrants(tx, doc.id, grants, hash));
      aclUpdated++;
    }
  }
  await addRunCounts(deps.pool, ids.runId, { deleted, aclUpdated });

  return { team, channels, deletedDocuments: deleted };
}
