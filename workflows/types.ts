/** Inputs and outputs shared by the sync workflow and its activities (plain data: crosses Temporal). */

export interface SyncInput {
  connectionId: string;
  /** Heartbeat timeout of long activities, in seconds (default 60); tests shorten it to fail over fast. */
  heartbeatTimeoutSeconds?: number;
  /**
   * Attempts of each long activity (default 8, about 90 s of back-off): a revoked credential fails the
   * run only after them, and a credential rotated meanwhile is picked up by the next attempt. Tests lower it.
   */
  activityAttempts?: number;
}

import type { SlackTeam } from '../connectors/slack/render.ts';
import type { SlackChannel } from '../connectors/slack/schemas.ts';

export interface PrincipalsResult {
  /** False when the connection is paused: the run ends without touching anything. */
  active: boolean;
  team: SlackTeam;
  channels: SlackChannel[];
  deletedDocuments: number;
}

export interface ChannelResult {
  channelId: string;
  documents: number;
  /** File ids seen in the messages processed, for the files phase. */
  fileIds: string[];
}

export interface SyncProgress {
  phase: 'starting' | 'principals' | 'channels' | 'files' | 'done' | 'skipped';
  channelsDone: number;
  channelsTotal: number;
  currentChannel: string | null;
}

export interface SyncSummary {
  runId: string;
  status: 'succeeded' | 'skipped';
  channels: number;
}
