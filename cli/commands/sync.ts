import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { getConnection } from '../../db/connections.ts';
import { getRun } from '../../db/runs.ts';
import { triggerSync } from '../../workflows/schedules.ts';
import { progressQuery } from '../../workflows/workflows.ts';
import type { SyncProgress } from '../../workflows/types.ts';
import type { CliContext } from '../context.ts';

/** `astry sync <connection>`: run a sync now (through the schedule) and follow it with a progress bar. */
export async function syncNow(ctx: CliContext, name: string, opts: { wait: boolean }): Promise<void> {
  const connection = await getConnection(ctx.pool, name, await ctx.workspaceId());
  const client = await ctx.temporal();
  const workflowId = await triggerSync(client, connection.id);
  console.log(`sync ${workflowId} started`);
  if (!opts.wait) return;
  const handle = client.workflow.getHandle(workflowId);
  const bar = new cliProgress.SingleBar(
    { format: ' {bar} {value}/{total} channels | {phase} {channel} | {docs} docs', hideCursor: true, noTTYOutput: !process.stdout.isTTY, notTTYSchedule: 2000 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(1, 0, { phase: 'starting', channel: '', docs: 0 });
  const done = handle.result().then(
    () => null,
    (err: unknown) => err,
  );
  let finished = false;
  void done.then(() => (finished = true));
  while (!finished) {
    const progress: SyncProgress | null = await handle.query(progressQuery).catch(() => null);
    const run = await getRun(ctx.pool, workflowId);
    if (progress) {
      bar.setTotal(Math.max(progress.channelsTotal, 1));
      bar.update(progress.channelsDone, { phase: progress.phase, channel: progress.currentChannel ?? '', docs: run?.indexed ?? 0 });
    }
    await Promise.race([done, sleep(250)]);
  }
  bar.stop();
  const failure = await done;
  const run = await getRun(ctx.pool, workflowId);
  if (run) {
    console.log(
      `${run.status}: ${run.indexed} indexed, ${run.unchanged} unchanged, ${run.aclUpdated} ACL updates, ` +
        `${run.deleted} deleted, ${run.chunks} chunks, ${run.errors} item errors`,
    );
  }
  if (failure) throw failure;
}
