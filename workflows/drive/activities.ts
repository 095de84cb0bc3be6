/** Activities of the Drive sync workflow, bound to their dependencies (tests pass real or fake ones). */
import { Context } from '@temporalio/activity';
import { DriveConnector } from '../../connectors/drive/connector.ts';
import { accessTokenOf, DriveConfigSchema, type DriveConfig } from '../../connectors/drive/config.ts';
import { AstryError } from '../../core/errors.ts';
import { connectionToken, getConnection, type Connection } from '../../db/connections.ts';
import type { ActivityDeps } from '../activities/deps.ts';
import { syncDrivePrincipals } from './principals.ts';
import { syncDriveScope } from './scope.ts';
import type { DrivePlan, DriveRunIds, DriveScope, DriveScopeResult, PlainAclContext } from './types.ts';

/** A Drive connection's settings, connector and ids. */
export async function openDrive(deps: ActivityDeps, connectionId: string): Promise<{ connection: Connection; config: DriveConfig; drive: DriveConnector }> {
  const connection = await getConnection(deps.pool, connectionId);
  if (connection.source !== 'drive') throw new AstryError('CONFIG_INVALID', `connection ${connectionId} is not a Drive connection`);
  const parsed = DriveConfigSchema.safeParse(connection.config);
  if (!parsed.success) throw new AstryError('CONFIG_INVALID', `Drive connection ${connectionId} config: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  const config = parsed.data;
  const accessToken = accessTokenOf(await connectionToken(deps.pool, deps.keys, connectionId));
  const drive = new DriveConnector({
    accessToken, rootUrl: config.rootUrl, maxFileBytes: deps.maxFileBytes,
    ...(config.adminRootUrl ? { adminRootUrl: config.adminRootUrl } : {}),
    ...(config.retry ? { retry: config.retry } : {}),
  });
  return { connection, config, drive };
}

export function createDriveActivities(deps: ActivityDeps) {
  const heartbeat = (detail: unknown) => Context.current().heartbeat(detail);

  return {
    /** Directory, groups, shared drives and their members; the scopes to sync. */
    async syncDrivePrincipals(input: DriveRunIds): Promise<DrivePlan> {
      const { connection, drive } = await openDrive(deps, input.connectionId);
      if (connection.status === 'paused') return { active: false, scopes: [], deletedDocuments: 0, acl: { customerId: '', domains: [], inactive: [] } };
      const ids = { workspaceId: connection.workspaceId, ...input };
      return { active: true, ...(await syncDrivePrincipals(deps, drive, ids, heartbeat)) };
    },

    /** One change log: listed in full when new or due, else its changes since the committed token. */
    async syncDriveScope(input: DriveRunIds & { scope: DriveScope; acl: PlainAclContext }): Promise<DriveScopeResult> {
      const { connection, config, drive } = await openDrive(deps, input.connectionId);
      const ids = { workspaceId: connection.workspaceId, connectionId: input.connectionId, runId: input.runId };
      const ctx = { customerId: input.acl.customerId, domains: new Set(input.acl.domains), inactive: new Set(input.acl.inactive) };
      return syncDriveScope(deps, drive, ctx, ids, input.scope, config, heartbeat);
    },
  };
}

export type DriveActivities = ReturnType<typeof createDriveActivities>;
