// A sync worker in its own process, so a test can SIGKILL it mid-sync like a crashed machine.
import { env } from '../../core/env.ts';
import { activityDepsFromEnv } from '../../workflows/runtime.ts';
import { createSyncWorker } from '../../workflows/worker.ts';
import { TEST_SLACK_RETRY } from './harness.ts';

const config = env();
const deps = { ...(await activityDepsFromEnv(config)), slackRetry: TEST_SLACK_RETRY, batchSize: 8 };
const { worker } = await createSyncWorker(config, deps);
process.stdout.write('worker ready\n');
await worker.run();
