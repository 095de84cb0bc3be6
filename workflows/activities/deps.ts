import type { RetryOptions } from '@slack/web-api';
import type { PipelineDeps } from '../../pipeline/ingest.ts';

/** What sync activities need; the worker builds it once, tests pass their own. */
export interface ActivityDeps extends PipelineDeps {
  /** Slack WebClient retry policy (tests pass a small one; default: the SDK's). */
  slackRetry?: RetryOptions;
  /** Documents per pipeline batch (default 32). */
  batchSize?: number;
  /** How far before the last seen message an incremental run re-reads thread parents, in days (default 30). */
  threadLookbackDays?: number;
  /** Hours between full history re-reads of a channel, which catch deletions and old-thread replies (default 24). */
  fullRescanHours?: number;
}
