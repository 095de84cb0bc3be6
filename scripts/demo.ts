// The README's demo: seed the emulated company, connect Slack, SharePoint/OneDrive (Microsoft Graph,
// over HTTPS) and Google Drive, sync them through Temporal, print what was indexed and who can read it,
// then ask the same questions as six people. Uses its own database (astry_demo), recreated each run.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { DEFAULT_API_AUDIENCE, SEEDED_IDP_USERS } from '../fixtures/idp/people.ts';
import { startIdp } from '../fixtures/idp/server.ts';
import { CODEWORD, FILE_CODEWORD } from '../fixtures/slack/ids.ts';

/** Someone the IdP can sign in who is not in the company directory. */
const OUTSIDER = { sub: 'idp-mallory', email: 'mallory@outside.example', name: 'Mallory (outsider)' };
import { SlackEmulator } from '../fixtures/slack/emulator.ts';
import { generateCompany } from '../fixtures/slack/company.ts';
import { GraphEmulator } from '../fixtures/graph/emulator.ts';
import { FILES as GRAPH_FILES } from '../fixtures/graph/ids.ts';
import { generateTenant } from '../fixtures/graph/tenant.ts';
import { DriveEmulator } from '../fixtures/drive/emulator.ts';
import { generateDriveCompany } from '../fixtures/drive/company.ts';
import { CODEWORD as DRIVE_CODEWORD } from '../fixtures/drive/ids.ts';

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
// A fresh audit trail per demo run: its checkpoints must match this run's database.
const stateDir = await mkdtemp(join(tmpdir(), 'astry-demo-'));
process.env.ASTRY_AUDIT_SPOOL_DIR = join(stateDir, 'audit-spool');
process.env.ASTRY_AUDIT_CHECKPOINT_DIR = join(stateDir, 'audit-checkpoints');
process.env.ASTRY_SANDBOX_DIR = join(stateDir, 'sandboxes');
// The local IdP (oidc-provider) that signs the people in; the API trusts exactly it.
const idp = await startIdp({ users: [...SEEDED_IDP_USERS, OUTSIDER], audience: DEFAULT_API_AUDIENCE });
process.env.ASTRY_OIDC_ISSUER = idp.issuer;
process.env.ASTRY_OIDC_AUDIENCE = DEFAULT_API_AUDIENCE;

const admin = new pg.Client({ connectionString: base.toString() });
await admin.connect();
await admin.query('DROP DATABASE IF EXISTS astry_demo WITH (FORCE)');
await admin.query('CREATE DATABASE astry_demo TEMPLATE template1');
await admin.end();

// Imported after the environment is set: configuration is parsed once, on first use.
const { migrate } = await import('../db/migrate.ts');
const { CliContext } = await import('../cli/context.ts');
const { connectSlack, connectSource, showConnections } = await import('../cli/commands/connections.ts');
const { showIdentities } = await import('../cli/commands/identities.ts');
const { syncNow } = await import('../cli/commands/sync.ts');
const { printIndexReport } = await import('../cli/commands/report.ts');
const { activityDepsFromEnv } = await import('../workflows/runtime.ts');
const { createSyncWorker } = await import('../workflows/worker.ts');
const { deleteSchedule } = await import('../workflows/schedules.ts');
const { upsertDirectoryUsers } = await import('../db/directory.ts');
const { askDepsFromEnv } = await import('../worker/runtime.ts');
const { startQueryWorker } = await import('../worker/query-worker.ts');
const { AskQueue, redisConnection } = await import('../worker/queue.ts');
const { buildApi } = await import('../api/server.ts');
const { TokenVerifier } = await import('../identity/verifier.ts');
const { askApi, printAnswer, auditVerify } = await import('../cli/commands/query.ts');

const ctx = new CliContext();
await migrate(ctx.env.ASTRY_MIGRATION_DATABASE_URL);
const emulator = await SlackEmulator.start(generateCompany({ seed: 42, scale: 1 }));
const company = emulator.company;
// The same people in Microsoft 365 and Google Workspace (linked to one user each by verified email).
const graph = await GraphEmulator.start(generateTenant({}));
const drive = await DriveEmulator.start(generateDriveCompany({}));
const tenant = graph.state.tenant;
console.log(`\n== Seeded "${company.team.name}": ${company.users.length} people, ${company.channels.length} conversations (Slack emulator at ${emulator.url})`);
console.log(`   Microsoft 365 tenant: ${tenant.sites.length} SharePoint sites, ${tenant.items.filter((i) => !i.folder).length} files (Graph emulator over HTTPS at ${graph.graphUrl})`);
console.log(`   Google Workspace: ${drive.state.company.drives.length} shared drives + My Drives (Drive emulator at ${drive.rootUrl})`);

const deps = await activityDepsFromEnv(ctx.env);
const { worker, connection } = await createSyncWorker(ctx.env, deps);
const running = worker.run();
const temporal = await ctx.temporal();
// Schedules left by an earlier demo run would point at a database that no longer exists.
for (const id of ['1', '2', '3']) await deleteSchedule(temporal, id).catch(() => undefined);

try {
  console.log('\n== astry connect slack');
  await connectSlack(ctx, { name: 'demo-slack', token: emulator.token, apiUrl: emulator.url });
  console.log('\n== astry sync demo-slack');
  await syncNow(ctx, 'demo-slack', { wait: true });
  console.log('\n== astry connect graph  (app-only client credentials; the emulator\'s CA trusted for this connection only)');
  await connectSource(ctx, {
    source: 'graph', name: 'demo-m365', secret: tenant.clientSecret,
    config: { tenantId: tenant.tenantId, clientId: tenant.clientId, graphUrl: graph.graphUrl, authorityUrl: graph.authorityUrl, caPem: graph.caPem },
  });
  console.log('\n== astry sync demo-m365');
  await syncNow(ctx, 'demo-m365', { wait: true });
  console.log('\n== astry connect drive');
  await connectSource(ctx, { source: 'drive', name: 'demo-drive', secret: drive.token, config: { rootUrl: drive.rootUrl } });
  console.log('\n== astry sync demo-drive');
  await syncNow(ctx, 'demo-drive', { wait: true });
  console.log('\n== astry connections');
  await showConnections(ctx);
  console.log('\n== astry index demo-slack  (per channel: documents, chunks, and who can read them)');
  await printIndexReport(ctx, 'demo-slack');
  console.log('\nNot indexed: #secret-no-bot (the bot is not a member) and every DM / group DM (never indexed).');
  console.log('\n== astry identities --unlinked  (source accounts that are nobody in the directory: guests, outsiders)');
  await showIdentities(ctx, { unlinked: true });

  // --- Questions: the same ones, asked by different people, through the real API and query worker ---
  const workspaceId = await ctx.workspaceId();
  await upsertDirectoryUsers(ctx.pool, workspaceId, SEEDED_IDP_USERS.map((u) => ({ email: u.email, displayName: u.name, active: !u.email.startsWith('dave@') })));
  console.log('\n== IdP directory: alice, bob, gina (guest), sam (single-channel guest) active; dave deactivated; mallory unknown');
  const askDeps = await askDepsFromEnv(ctx.env);
  const queryWorker = await startQueryWorker(askDeps, { connection: redisConnection(ctx.env.REDIS_URL), queueName: 'astry-ask-demo' });
  const queue = new AskQueue(redisConnection(ctx.env.REDIS_URL), 'astry-ask-demo');
  const verifier = new TokenVerifier({ issuer: idp.issuer, audience: DEFAULT_API_AUDIENCE, jwksUrl: idp.jwksUrl });
  const api = await buildApi({ pool: ctx.pool, verifier, queue, workspaceId, audit: askDeps.audit, keys: askDeps.keys });
  const apiUrl = await api.listen({ host: '127.0.0.1', port: 0 });
  try {
    const questions = [
      `What are the plans marked ${CODEWORD.privatePlans}?`,
      `What does the spec say about ${FILE_CODEWORD.specPdf}?`,
      // SharePoint: granted to a group nested in another (alice, carol, gina), not to bob or sam.
      `What does the roadmap say about ${GRAPH_FILES.roadmap.codeword}?`,
      // Google Drive: the Engineering shared drive (alice, bob, sam through nested groups), not gina.
      `What does the design doc say about ${DRIVE_CODEWORD.designDoc ?? ''}?`,
    ];
    const askers = [
      ['alice@ex.com', 'full member, in #private-plans'],
      ['gina@ex.com', 'multi-channel guest, in #private-plans'],
      ['bob@ex.com', 'full member, not in #private-plans'],
      ['sam@ex.com', 'single-channel guest (#engineering only)'],
      ['dave@ex.com', 'deactivated'],
      [OUTSIDER.email, 'outside the company'],
    ] as const;
    for (const question of questions) {
      console.log(`\n== astry ask "${question}"`);
      for (const [email, who] of askers) {
        console.log(`\n-- as ${email} (${who})`);
        try {
          printAnswer(await askApi(apiUrl, await idp.tokenFor(email), question));
        } catch (err) {
          console.log(`refused: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    await askDeps.audit.drain();
    console.log('\n== audit trail (every query: who, documents materialized, model, cost, outcome)');
    const { rows } = await ctx.pool.query<{ seq: string; entry: { actor: string; outcome: string; documentIds?: string[]; model?: string; costUsd?: number } }>(
      `SELECT seq, entry FROM audit_log ORDER BY seq`,
    );
    for (const r of rows) {
      console.log(`#${r.seq} ${r.entry.actor.padEnd(74)} ${r.entry.outcome.padEnd(22)} docs=[${(r.entry.documentIds ?? []).join(',')}] ${r.entry.model ?? ''} $${(r.entry.costUsd ?? 0).toFixed(4)}`);
    }
    // Checkpoints are signed every 100 entries; sign one now so the verification below covers this run.
    await askDeps.audit.checkpoint();
    console.log('\n== astry audit verify');
    await auditVerify(ctx);
  } finally {
    await api.close();
    await queue.close();
    await queryWorker.close();
    await askDeps.audit.close();
    await askDeps.pool.end();
  }
} finally {
  for (const conn of (await ctx.pool.query<{ id: string }>(`SELECT id FROM connections`)).rows) await deleteSchedule(temporal, conn.id).catch(() => undefined);
  worker.shutdown();
  await running;
  await connection.close();
  await deps.pool.end();
  await emulator.close();
  await graph.close();
  await drive.close();
  await idp.stop();
  await ctx.close();
}
