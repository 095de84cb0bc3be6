/**
 * Every run, before any file: the directory (users, suspensions), Google groups with their derived
 * members, shared drives and their members, and the org-wide specials. Group and drive membership
 * changes never appear in a change log, so this polling is what revokes them.
 */
import { driveGroups, googleGroupMembers, specialMembers } from '../../connectors/drive/acl.ts';
import type { DriveConnector } from '../../connectors/drive/connector.ts';
import type { GroupMembers } from '../../connectors/types.ts';
import { containersOf, deleteDocuments, documentsInContainer } from '../../db/documents.ts';
import { inTransaction } from '../../db/pool.ts';
import { replaceGroupMembers, upsertIdentities } from '../../db/principals.ts';
import { addRunCounts, deleteCursor, getCursor, setCursor } from '../../db/runs.ts';
import type { ActivityDeps } from '../activities/deps.ts';
import { DirectoryCursorSchema, cursorScope, watchScope } from './scope.ts';
import { MY_DRIVE, type DrivePlan } from './types.ts';

export async function syncDrivePrincipals(
  deps: ActivityDeps,
  drive: DriveConnector,
  ids: { workspaceId: string; connectionId: string; runId: string },
  heartbeat: (detail: unknown) => void,
): Promise<Omit<DrivePlan, 'active'>> {
  const identities = await drive.identities();
  const ctx = await drive.aclContext(identities);
  const groups: GroupMembers[] = [...specialMembers(ctx, identities)];
  for (const group of await drive.groups()) {
    groups.push(googleGroupMembers(ctx, group, await drive.groupMembers(group.email)));
    heartbeat({ phase: 'groups', group: group.email });
  }
  const drives = await drive.sharedDrives();
  for (const d of drives) {
    groups.push(...driveGroups(ctx, d, await drive.driveMembers(d.id)));
    heartbeat({ phase: 'drives', drive: d.id });
  }
  await inTransaction(deps.pool, async (tx) => {
    await upsertIdentities(tx, ids.workspaceId, ids.connectionId, identities);
    await replaceGroupMembers(tx, ids.workspaceId, ids.connectionId, groups);
  });

  // A suspension or reinstatement changes who direct grants name: request a rescan of every scope.
  const inactive = [...ctx.inactive].sort();
  const directory = DirectoryCursorSchema.safeParse(await getCursor(deps.pool, ids.connectionId, 'directory'));
  if (!directory.success || directory.data.inactive.join('\n') !== inactive.join('\n')) {
    const rescanRequestedAt = directory.success ? new Date().toISOString() : new Date(0).toISOString();
    await setCursor(deps.pool, ids.connectionId, 'directory', { inactive, rescanRequestedAt });
  }

  // Shared drives that are gone (deleted, or out of the crawl account's reach): their documents go.
  const scopes = [MY_DRIVE, ...drives.map((d) => d.id)];
  const present = new Set(scopes);
  let deleted = 0;
  for (const container of await containersOf(deps.pool, ids.connectionId)) {
    if (present.has(container)) continue;
    const docs = await documentsInContainer(deps.pool, ids.connectionId, container);
    deleted += await deleteDocuments(deps.pool, ids.connectionId, docs.map((d) => d.sourceId));
    await deleteCursor(deps.pool, ids.connectionId, cursorScope(container));
    await deleteCursor(deps.pool, ids.connectionId, watchScope(container));
  }
  await addRunCounts(deps.pool, ids.runId, { deleted });
  return { scopes, deletedDocuments: deleted, acl: { customerId: ctx.customerId, domains: [...ctx.domains], inactive } };
}
