/**
 * Principals of a tenant, re-read every run before any content (so revocations land first): Entra
 * users (identities), groups with their transitive members and owners, the specials, and every
 * site's SharePoint groups. Group membership changes never appear in drive deltas, so they are
 * polled here. Drives the app can no longer see lose their documents.
 */
import { activeUsers, entraGroup, everyoneSpecial, groupOwners, internalSpecial, siteGroup, siteGroupMembers } from '../../connectors/graph/acl.ts';
import type { GraphConnector } from '../../connectors/graph/connector.ts';
import type { GroupMembers, PrincipalRef } from '../../connectors/types.ts';
import { deleteDocuments } from '../../db/documents.ts';
import { inTransaction } from '../../db/pool.ts';
import { replaceGroupMembers, upsertIdentities } from '../../db/principals.ts';
import { addRunCounts, deleteCursor } from '../../db/runs.ts';
import type { ActivityDeps } from '../activities/deps.ts';
import { driveScope } from './drive.ts';
import type { GraphDriveRef } from './types.ts';

/** Group ids this connection stored members for before: a group deleted since must be emptied. */
async function storedGroupIds(deps: ActivityDeps, connectionId: string, tenantId: string): Promise<string[]> {
  const prefix = `graph:${tenantId}:group:`;
  const { rows } = await deps.pool.query<{ key: string }>(
    `SELECT DISTINCT p.key FROM memberships m JOIN principals p ON p.id = m.group_id
     WHERE m.connection_id = $1 AND left(p.key, $3) = $2`,
    [connectionId, prefix, prefix.length],
  );
  return rows.map((r) => r.key.slice(prefix.length).replace(/:owners$/, ''));
}

/** Drives whose documents this connection holds (from their source ids `item:<drive>:<item>`). */
async function storedDrives(deps: ActivityDeps, connectionId: string): Promise<string[]> {
  const { rows } = await deps.pool.query<{ drive: string }>(
    `SELECT DISTINCT split_part(source_id, ':', 2) AS drive FROM documents WHERE connection_id = $1 AND source_id LIKE 'item:%'`,
    [connectionId],
  );
  return rows.map((r) => r.drive);
}

export async function syncGraphPrincipals(
  deps: ActivityDeps,
  graph: GraphConnector,
  ids: { workspaceId: string; connectionId: string; runId: string },
  heartbeat: (detail: unknown) => void,
): Promise<{ drives: GraphDriveRef[]; deletedDocuments: number }> {
  const t = graph.tenantId;
  const identities = await graph.identities();
  const sites = await graph.sites();
  heartbeat({ phase: 'sites' });
  const groups: GroupMembers[] = [];
  const groupIds = new Set((await graph.groups()).map((g) => g.id.toLowerCase()));
  const ownerIds = new Set<string>();
  const drives: GraphDriveRef[] = [];

  for (const site of sites) {
    for (const drive of await graph.drives(site.id)) drives.push({ driveId: drive.id, siteId: site.id, name: `${site.displayName ?? site.name ?? site.id} / ${drive.name}` });
    for (const sg of await graph.siteGroups(site)) {
      const members = siteGroupMembers(sg.users, { tenantId: t, identities });
      for (const m of members) {
        const claim = new RegExp(`^graph:${t}:group:([^:]+)(:owners)?$`).exec(m.key);
        if (claim?.[1]) (claim[2] ? ownerIds : groupIds).add(claim[1]);
      }
      groups.push({ group: siteGroup(t, site.id, sg.id), displayName: sg.title, members });
    }
    heartbeat({ phase: 'sites', site: site.id });
  }
  for (const id of await storedGroupIds(deps, ids.connectionId, t)) groupIds.add(id);

  // Graph expands nesting server-side (transitiveMembers); a 404 (deleted group) empties it.
  for (const id of groupIds) {
    const userIds = (await graph.groupUserIds(id, 'transitiveMembers')) ?? [];
    groups.push({ group: entraGroup(t, id), displayName: `Entra group ${id}`, members: activeUsers(userIds.map((u) => identities.byId(u))) });
  }
  for (const id of ownerIds) {
    const userIds = (await graph.groupUserIds(id, 'owners')) ?? [];
    groups.push({ group: groupOwners(t, id), displayName: `Owners of Entra group ${id}`, members: activeUsers(userIds.map((u) => identities.byId(u))) });
  }
  heartbeat({ phase: 'groups' });

  const all = identities.all;
  const internal: PrincipalRef[] = activeUsers(all.filter((i) => i.kind === 'member'));
  groups.push(
    { group: internalSpecial(t), displayName: 'Everyone except external users (Microsoft 365)', members: internal },
    { group: everyoneSpecial(t), displayName: 'Everyone (Microsoft 365)', members: activeUsers(all) },
  );
  await inTransaction(deps.pool, async (tx) => {
    await upsertIdentities(tx, ids.workspaceId, ids.connectionId, all);
    await replaceGroupMembers(tx, ids.workspaceId, ids.connectionId, groups);
  });

  // Libraries the app can no longer see (site deleted, access removed): their documents go.
  const visible = new Set(drives.map((d) => d.driveId));
  let deleted = 0;
  for (const driveId of (await storedDrives(deps, ids.connectionId)).filter((d) => !visible.has(d))) {
    const prefix = `item:${driveId}:`;
    const { rows } = await deps.pool.query<{ source_id: string }>(
      `SELECT source_id FROM documents WHERE connection_id = $1 AND left(source_id, $3) = $2`,
      [ids.connectionId, prefix, prefix.length],
    );
    deleted += await deleteDocuments(deps.pool, ids.connectionId, rows.map((r) => r.source_id));
    await deleteCursor(deps.pool, ids.connectionId, driveScope(driveId));
  }
  await addRunCounts(deps.pool, ids.runId, { deleted });
  return { drives, deletedDocuments: deleted };
}
