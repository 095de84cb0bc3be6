import { generateCompany } from '../../fixtures/slack/company.ts';
import { SlackEmulator } from '../../fixtures/slack/emulator.ts';
import type { ActivityDeps } from '../../workflows/activities/index.ts';
import { SYNC_WORKFLOW } from '../../workflows/constants.ts';
import { startSyncBase, type SyncBase } from './sync-base.ts';

export { loadModels } from './sync-base.ts';

/** Small Slack retry budget for tests (the SDK default retries for ~30 minutes). */
export const TEST_SLACK_RETRY = { retries: 3, factor: 1, minTimeout: 20, maxTimeout: 200, randomize: false };

/** Real Postgres (fresh database), real Temporal (own task queue), the Slack emulator, the real model. */
export interface SyncHarness extends SyncBase<ActivityDeps> {
  emulator: SlackEmulator;
}

export async function startHarness(opts: { scale?: number; seed?: number; worker?: boolean } = {}): Promise<SyncHarness> {
  const emulator = await SlackEmulator.start(generateCompany({ seed: opts.seed ?? 42, scale: opts.scale ?? 1 }));
  const base = await startSyncBase<ActivityDeps>({
    name: 'slack', source: 'slack', workflow: SYNC_WORKFLOW, emulator,
    connection: { name: 'slack', config: { apiUrl: emulator.url }, token: emulator.token },
    deps: { slackRetry: TEST_SLACK_RETRY },
    ...(opts.worker === undefined ? {} : { worker: opts.worker }),
  });
  return Object.assign(base, { emulator });
}
