import { Context } from '@temporalio/activity';
import { SlackConnector } from '../../connectors/slack/connector.ts';
import type { SlackTeam } from '../../connectors/slack/render.ts';
import type { SlackChannel } from '../../connectors/slack/schemas.ts';
import { connectionToken, getConnection, SlackConfigSchema, type Connection } from '../../db/connections.ts';
import { beginRun, finishRun } from '../../db/runs.ts';
import type { ChannelResult, PrincipalsResult } from '../types.ts';
import type { ActivityDeps } from './deps.ts';
import { createGraphActivities } from '../graph/activities.ts';
import { syncSlackChannel } from './slack-channel.ts';
import { syncSlackFiles } from './slack-files.ts';
import { syncSlackPrincipals } from './slack-principals.ts';
import { createDriveActivities } from '../drive/activities.ts';
import { createErasureActivities } from '../erasure/activities.ts';

export type { ActivityDeps } from './deps.ts';

interface RunIds {
  connectionId: string;
  runId: string;
}

/** Activities of the sync workflow, bound to their dependencies (tests pass real or fake ones). */
export function createActivities(deps: ActivityDeps) {
  async function open(connectionId: string): Promise<{ connection: Connection; slack: SlackConnector }> {
    const connection = await getConnection(deps.pool, connectionId);
    const token = await connectionToken(deps.pool, deps.keys, connectionId);
    const slack = new SlackConnector({
      token,
      apiUrl: SlackConfigSchema.parse(connection.config).apiUrl,
      maxFileBytes: deps.maxFileBytes,
      ...(deps.slackRetry ? { retryConfig: deps.slackRetry } : {}),
    });
    return { connection, slack };
  }

  const heartbeat = (detail: unknown) => Context.current().heartbeat(detail);

  return {
    ...createDriveActivities(deps),
    ...createGraphActivities(deps),
    ...createErasureActivities(deps),
    async beginRun(connectionId: string, workflowId: string): Promise<string> {
      return beginRun(deps.pool, connectionId, workflowId);
    },

    async finishRun(runId: string, status: 'succeeded' | 'failed', failure?: string): Promise<void> {
      await finishRun(deps.pool, runId, status, failure);
    },

    async syncPrincipals(input: RunIds): Promise<PrincipalsResult> {
      const { connection, slack } = await open(input.connectionId);
      if (connection.status === 'paused') {
        return { active: false, team: { teamId: '', domain: '', botUserId: '' }, channels: [], deletedDocuments: 0 };
      }
      const ids = { workspaceId: connection.workspaceId, ...input };
      return { active: true, ...(await syncSlackPrincipals(deps, slack, ids, heartbeat)) };
    },

    async syncChannel(input: RunIds & { team: SlackTeam; channel: SlackChannel }): Promise<ChannelResult> {
      const { connection, slack } = await open(input.connectionId);
      const ids = { workspaceId: connection.workspaceId, connectionId: input.connectionId, runId: input.runId };
      const resumed = Context.current().info.heartbeatDetails;
      return syncSlackChannel(deps, slack, ids, input.team, input.channel, heartbeat, resumed);
    },

    async syncFiles(input: RunIds & { channels: SlackChannel[]; fileIds: string[] }): Promise<number> {
      const { connection, slack } = await open(input.connectionId);
      const ids = { workspaceId: connection.workspaceId, connectionId: input.connectionId, runId: input.runId };
      return syncSlackFiles(deps, slack, ids, input.channels, input.fileIds, heartbeat);
    },
  };
}

export type SyncActivities = ReturnType<typeof createActivities>;
