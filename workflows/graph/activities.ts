/** Activities of the Graph sync workflow, bound to their dependencies (tests pass real or fake ones). */
import { Context } from '@temporalio/activity';
import { GraphConfigSchema } from '../../connectors/graph/config.ts';
import { GraphConnector } from '../../connectors/graph/connector.ts';
import type { GraphRetry } from '../../connectors/graph/client.ts';
import { AstryError } from '../../core/errors.ts';
import { connectionToken, getConnection, type Connection } from '../../db/connections.ts';
import type { ActivityDeps } from '../activities/deps.ts';
import { syncGraphDrive } from './drive.ts';
import { syncGraphPrincipals } from './principals.ts';
import { ensureSubscriptions } from './subscriptions.ts';
import type { GraphDriveRef, GraphDriveResult, GraphPrincipalsResult } from './types.ts';

/** What Graph activities need beyond the pipeline's dependencies. */
export interface GraphActivityDeps extends ActivityDeps {
  /** Throttling retry policy of the Graph client (tests pass a small one; default 6 retries). */
  graphRetry?: GraphRetry;
  /** Permission requests in flight per drive (default 8). */
  graphConcurrency?: number;
}

interface RunIds {
  connectionId: string;
  runId: string;
}

export function createGraphActivities(deps: GraphActivityDeps) {
  async function open(connectionId: string): Promise<{ connection: Connection; graph: GraphConnector; notificationBaseUrl: string | undefined }> {
    const connection = await getConnection(deps.pool, connectionId);
    if (connection.source !== 'graph') throw new AstryError('CONFIG_INVALID', `connection ${connectionId} is not a Graph connection`);
    const parsed = GraphConfigSchema.safeParse(connection.config);
    if (!parsed.success) throw new AstryError('CONFIG_INVALID', `Graph connection ${connection.name} has an invalid config: ${parsed.error.message}`);
    const config = parsed.data;
    const graph = new GraphConnector({
      graphUrl: config.graphUrl, authorityUrl: config.authorityUrl, tenantId: config.tenantId, clientId: config.clientId,
      clientSecret: await connectionToken(deps.pool, deps.keys, connectionId), maxFileBytes: deps.maxFileBytes,
      ...(config.caPem ? { caPem: config.caPem } : {}), ...(deps.graphRetry ? { retry: deps.graphRetry } : {}),
    });
    return { connection, graph, notificationBaseUrl: config.notificationBaseUrl };
  }

  const heartbeat = (detail: unknown) => Context.current().heartbeat(detail);

  return {
    async syncGraphPrincipals(input: RunIds): Promise<GraphPrincipalsResult> {
      const { connection, graph, notificationBaseUrl } = await open(input.connectionId);
      try {
        if (connection.status === 'paused') return { active: false, drives: [], deletedDocuments: 0 };
        const ids = { workspaceId: connection.workspaceId, ...input };
        const result = await syncGraphPrincipals(deps, graph, ids, heartbeat);
        if (notificationBaseUrl) {
          await ensureSubscriptions(deps.pool, graph, input.connectionId, notificationBaseUrl, result.drives.map((d) => d.driveId));
        }
        return { active: true, ...result };
      } finally {
        await graph.close();
      }
    },

    async syncGraphDrive(input: RunIds & { drive: GraphDriveRef }): Promise<GraphDriveResult> {
      const { connection, graph } = await open(input.connectionId);
      try {
        const identities = await graph.identities();
        const ids = { workspaceId: connection.workspaceId, connectionId: input.connectionId, runId: input.runId };
        const acl = { tenantId: graph.tenantId, siteId: input.drive.siteId, identities };
        return await syncGraphDrive({ deps, graph, ids, acl, heartbeat }, input.drive);
      } finally {
        await graph.close();
      }
    },
  };
}

export type GraphActivities = ReturnType<typeof createGraphActivities>;
