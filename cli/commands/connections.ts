import { createConnection, getConnection, listConnections, type SourceKind } from '../../db/connections.ts';
import { setConnectionPaused } from '../../workflows/connection-control.ts';
import { ensureSchedule } from '../../workflows/schedules.ts';
import type { CliContext } from '../context.ts';

/**
 * `astry connect <source>`: store the sealed credentials and create the recurring sync schedule.
 * `config` is the source's non-secret settings, validated by its activities on every run.
 */
export async function connectSource(
  ctx: CliContext,
  opts: { source: SourceKind; name: string; config: Record<string, unknown>; secret: string },
): Promise<void> {
  const keys = await ctx.keys();
  const workspaceId = await ctx.workspaceId();
  const connection = await createConnection(ctx.pool, keys, { workspaceId, name: opts.name, source: opts.source, config: opts.config, token: opts.secret });
  await ensureSchedule(await ctx.temporal(), {
    connectionId: connection.id,
    source: opts.source,
    taskQueue: ctx.env.ASTRY_TASK_QUEUE,
    intervalSeconds: ctx.env.ASTRY_SYNC_INTERVAL_SECONDS,
  });
  console.log(`connected ${opts.source} as "${connection.name}" (id ${connection.id}); syncs every ${ctx.env.ASTRY_SYNC_INTERVAL_SECONDS}s`);
}

/** `astry connect slack`. */
export function connectSlack(ctx: CliContext, opts: { name: string; token: string; apiUrl: string }): Promise<void> {
  return connectSource(ctx, { source: 'slack', name: opts.name, config: { apiUrl: opts.apiUrl }, secret: opts.token });
}

/** `astry connections`: one line per connection with its health. */
export async function showConnections(ctx: CliContext): Promise<void> {
  const rows = await listConnections(ctx.pool, await ctx.workspaceId());
  if (rows.length === 0) {
    console.log('no connections yet: astry connect slack --help');
    return;
  }
  console.table(
    rows.map((r) => ({
      id: r.id,
      name: r.name,
      source: r.source,
      status: r.status,
      documents: r.documents,
      'last sync': r.lastRun ? r.lastRun.finishedAt.toISOString() : 'never',
      'last result': r.lastRun?.status ?? '-',
      errors: r.lastRun?.errors ?? 0,
    })),
  );
}

/** `astry pause|resume <connection>`: the schedule and the connection's status move together. */
export async function setPaused(ctx: CliContext, name: string, paused: boolean): Promise<void> {
  const connection = await getConnection(ctx.pool, name, await ctx.workspaceId());
  await setConnectionPaused({ pool: ctx.pool, client: await ctx.temporal() }, connection.id, paused, `${paused ? 'paused' : 'resumed'} from the astry CLI`);
  console.log(`${connection.name}: ${paused ? 'paused' : 'active'}`);
}
