// The README's demo: seed the emulated company, connect Slack, sync through Temporal, and print what
// was indexed per channel and who can read it. Uses its own database (astry_demo), recreated each run.
import pg from 'pg';
import { SlackEmulator } from '../fixtures/slack/emulator.ts';
import { generateCompany } from '../fixtures/slack/company.ts';

const base = new URL(process.env.ASTRY_MIGRATION_DATABASE_URL ?? 'postgres://astry:astry@127.0.0.1:5432/astry');
const withDatabase = (url: string): string => {
  const u = new URL(url);
  u.pathname = '/astry_demo';
  return u.toString();
};
process.env.ASTRY_MIGRATION_DATABASE_URL = withDatabase(base.toString());
process.env.DATABASE_URL = withDatabase(process.env.DATABASE_URL ?? 'postgres://astry_app:astry_app@127.0.0.1:5432/astry');
process.env.ASTRY_TASK_QUEUE ??= 'astry-demo';
process.env.ASTRY_WORKSPACE ??= 'demo';

const admin = new pg.Client({ connectionString: base.toString() });
await admin.connect();
await admin.query('DROP DATABASE IF EXISTS astry_demo WITH (FORCE)');
await admin.query('CREATE DATABASE astry_demo TEMPLATE template1');
await admin.end();

// Imported after the environment is set: configuration is parsed once, on first use.
const { migrate } = await import('../db/migrate.ts');
const { CliContext } = await import('../cli/context.ts');
const { connectSlack, showConnections } = await import('../cli/commands/connections.ts');
const { syncNow } = await import('../cli/commands/sync.ts');
const { printIndexReport } = await import('../cli/commands/report.ts');
const { activityDepsFromEnv } = await import('../workflows/runtime.ts');
const { createSyncWorker } = await import('../workflows/worker.ts');
const { deleteSchedule } = await import('../workflows/schedules.ts');

const ctx = new CliContext();
await migrate(ctx.env.ASTRY_MIGRATION_DATABASE_URL);
const emulator = await SlackEmulator.start(generateCompany({ seed: 42, scale: 1 }));
const company = emulator.company;
console.log(`\n== Seeded "${company.team.name}": ${company.users.length} people, ${company.channels.length} conversations (Slack emulator at ${emulator.url})`);

const deps = await activityDepsFromEnv(ctx.env);
const { worker, connection } = await createSyncWorker(ctx.env, deps);
const running = worker.run();
const temporal = await ctx.temporal();
// A schedule left by an earlier demo run would point at a database that no longer exists.
await deleteSchedule(temporal, '1').catch(() => undefined);

try {
  console.log('\n== astry connect slack');
  await connectSlack(ctx, { name: 'demo-slack', token: emulator.token, apiUrl: emulator.url });
  console.log('\n== astry sync demo-slack');
  await syncNow(ctx, 'demo-slack', { wait: true });
  console.log('\n== astry connections');
  await showConnections(ctx);
  console.log('\n== astry index demo-slack  (per channel: documents, chunks, and who can read them)');
  await printIndexReport(ctx, 'demo-slack');
  console.log('\nNot indexed: #secret-no-bot (the bot is not a member) and every DM / group DM (never indexed).');
} finally {
  const [conn] = (await ctx.pool.query<{ id: string }>(`SELECT id FROM connections`)).rows;
  if (conn) await deleteSchedule(temporal, conn.id).catch(() => undefined);
  worker.shutdown();
  await running;
  await connection.close();
  await deps.pool.end();
  await emulator.close();
  await ctx.close();
}
