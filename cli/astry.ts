#!/usr/bin/env node
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { parseSlackEnv } from '../slackbot/config.ts';
import { startSlackBotFromEnv } from '../slackbot/runtime.ts';
import { AstryError, isAstryError } from '../core/errors.ts';
import { migrate } from '../db/migrate.ts';
import { activityDepsFromEnv } from '../workflows/runtime.ts';
import { createSyncWorker } from '../workflows/worker.ts';
import { connectSlack, connectSource, setPaused, showConnections } from './commands/connections.ts';
import { readSecret, rotateCommand, type RotateOptions, type SecretSource } from './commands/credentials.ts';
import { listKeysCommand, retireKeyCommand, rotateKeysCommand, type KeysRotateOptions } from './commands/keys.ts';
import { printIndexReport } from './commands/report.ts';
import { showIdentities } from './commands/identities.ts';
import { eraseCommand, verifyErasureCommand, type EraseOptions, type VerifyBundleOptions } from './commands/erase.ts';
import { DEFAULT_SCOPE, readStoredToken, runLogin } from './commands/login.ts';
import { createToken, groupClearance, listTokens, revokeToken } from './commands/scim.ts';
import { syncNow } from './commands/sync.ts';
import { askApi, auditVerify, printAnswer, runApi, runQueryWorker } from './commands/query.ts';
import { loginWithHint } from '../fixtures/idp/server.ts';
import { CliContext } from './context.ts';

const ctx = new CliContext();
const program = new Command('astry').description('Astry admin CLI').showHelpAfterError();

/** Runs a command body and maps expected failures to a one-line message and exit code 1. */
function action<A extends unknown[]>(body: (...args: A) => Promise<void>) {
  return async (...args: A) => {
    try {
      await body(...args);
    } catch (err) {
      if (!isAstryError(err)) throw err;
      console.error(`astry: ${err.message} (${err.code})`);
      process.exitCode = 1;
    } finally {
      await ctx.close();
    }
  };
}

program.command('migrate').description('apply database migrations').action(action(async () => {
  await migrate(ctx.env.ASTRY_MIGRATION_DATABASE_URL);
  console.log('database schema is up to date');
}));

program
  .command('worker')
  .description('run the Temporal sync worker until SIGINT/SIGTERM')
  .action(action(async () => {
    const deps = await activityDepsFromEnv(ctx.env);
    const { worker, connection } = await createSyncWorker(ctx.env, deps);
    console.log(`sync worker on task queue ${ctx.env.ASTRY_TASK_QUEUE}`);
    await worker.run();
    await connection.close();
    await deps.pool.end();
  }));

const connect = program.command('connect').description('connect a source');
/** `--secret-file` / `--secret-stdin` on a command whose secret is `what`; a secret given as an argument is refused unechoed. */
function secretOptions(command: Command, what: string): Command {
  return command
    .option('--secret-file <path>', `file holding the ${what} (stored encrypted; a trailing newline is ignored)`)
    .option('--secret-stdin', `read the ${what} from standard input (a pipe, not a terminal)`)
    // Checked by readSecret rather than by commander, whose message would echo a secret passed by mistake.
    .allowExcessArguments();
}

secretOptions(connect.command('slack').description('connect a Slack workspace with a bot token'), 'bot token (xoxb-…)')
  .option('--name <name>', 'connection name', 'slack')
  .option('--api-url <url>', 'Slack Web API base URL (an emulator for the demo)', 'https://slack.com/api/')
  .action(action(async (opts: SecretSource & { name: string; apiUrl: string }, command: Command) =>
    connectSlack(ctx, { name: opts.name, apiUrl: opts.apiUrl, token: await readSecret('connect', { ...opts, extraArguments: command.args.length }) })));

secretOptions(connect.command('graph').description('connect SharePoint/OneDrive through Microsoft Graph (app-only: client credentials)'), 'client secret')
  .requiredOption('--tenant <id>', 'Entra tenant id')
  .requiredOption('--client-id <id>', 'app registration client id')
  .option('--name <name>', 'connection name', 'graph')
  .option('--graph-url <url>', 'Graph base URL (an emulator for the demo)')
  .option('--authority-url <url>', 'token authority base URL')
  .option('--ca-file <path>', 'extra CA certificate (PEM) to trust, e.g. the emulator\'s')
  .action(action(async (o: SecretSource & { tenant: string; clientId: string; name: string; graphUrl?: string; authorityUrl?: string; caFile?: string }, command: Command) => {
    const secret = await readSecret('connect', { ...o, extraArguments: command.args.length });
    const config = {
      tenantId: o.tenant, clientId: o.clientId,
      ...(o.graphUrl ? { graphUrl: o.graphUrl } : {}),
      ...(o.authorityUrl ? { authorityUrl: o.authorityUrl } : {}),
      ...(o.caFile ? { caPem: await readFile(o.caFile, 'utf8') } : {}),
    };
    await connectSource(ctx, { source: 'graph', name: o.name, config, secret });
  }));
secretOptions(connect.command('drive').description('connect Google Drive (shared drives and My Drive) with the Admin SDK for groups'), 'OAuth access token of the crawl account')
  .option('--name <name>', 'connection name', 'drive')
  .option('--root-url <url>', 'Drive API root URL (an emulator for the demo)', 'https://www.googleapis.com/')
  .option('--admin-root-url <url>', 'Admin SDK root URL')
  .action(action(async (o: SecretSource & { name: string; rootUrl: string; adminRootUrl?: string }, command: Command) => {
    const secret = await readSecret('connect', { ...o, extraArguments: command.args.length });
    await connectSource(ctx, { source: 'drive', name: o.name, config: { rootUrl: o.rootUrl, ...(o.adminRootUrl ? { adminRootUrl: o.adminRootUrl } : {}) }, secret });
  }));

const connections = program.command('connections').description('list connections: last sync, documents, errors').action(action(() => showConnections(ctx)));
connections
  .command('rotate <connection>')
  .description('replace a connection\'s source credential (bot token, client secret, access token); read from a file or stdin, never an argument')
  .option('--secret-file <path>', 'file holding the new secret (a trailing newline is ignored)')
  .option('--secret-stdin', 'read the new secret from standard input (a pipe, not a terminal)')
  .option('--verify', 'make one authenticated call to the source with the new secret first; store nothing if it is refused')
  // Checked by the command rather than by commander, whose message would echo a secret passed by mistake.
  .allowExcessArguments()
  .action(action((name: string, opts: RotateOptions, command: Command) => rotateCommand(ctx, name, { ...opts, extraArguments: command.args.length - 1 })));

program
  .command('sync <connection>')
  .description('sync a connection now, with a progress bar')
  .option('--no-wait', 'start the run and return')
  .action(action((name: string, opts: { wait: boolean }) => syncNow(ctx, name, opts)));

program.command('pause <connection>').description('pause scheduled syncs').action(action((name: string) => setPaused(ctx, name, true)));
program.command('resume <connection>').description('resume scheduled syncs').action(action((name: string) => setPaused(ctx, name, false)));

const keys = program.command('keys').description('key-encryption keys (KEKs): list, rotate, retire (docs/keys.md)');
keys.command('list').description('every KEK: file, active or old, how many data keys it wraps').action(action(() => listKeysCommand(ctx)));
keys
  .command('rotate')
  .description('create a new KEK, make it the one that wraps, and re-wrap every data key under it (old KEKs still unwrap)')
  .option('--resume', 'create no key: finish re-wrapping to the active KEK after a stop or a crash')
  .option('--batch-size <rows>', 'rows re-wrapped per update', '500')
  .option('--max-batches <n>', 'stop after n batches (continue later with --resume)')
  .action(action((opts: KeysRotateOptions) => rotateKeysCommand(ctx, opts)));
keys
  .command('retire <key-id>')
  .description('delete an old KEK\'s file; refused while any data key is still wrapped by it')
  .action(action((keyId: string) => retireKeyCommand(ctx, keyId)));

program
  .command('identities')
  .description('source accounts and the canonical users they resolve to')
  .option('--unlinked', 'only identities not linked to a canonical email: user (guests, externals, no verified email)')
  .action(action((opts: { unlinked?: boolean }) => showIdentities(ctx, opts)));

program
  .command('index <connection>')
  .description('what a connection indexed per channel, and who can read it')
  .action(action((name: string) => printIndexReport(ctx, name)));

program.command('query-worker').description('answer queued questions (refuses to start without OS confinement)').action(action(() => runQueryWorker(ctx)));
program
  .command('slackbot')
  .description('post answers to questions asked in Slack (runs beside the query worker; needs ASTRY_SLACK_SIGNING_SECRET)')
  .action(action(async () => {
    const bot = await startSlackBotFromEnv(ctx.env, parseSlackEnv(process.env));
    console.log(`Slack bot ready (team ${bot.deps.teamId}, connection ${bot.deps.connectionId})`);
    await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
    await bot.close();
  }));
program.command('api').description('serve the HTTP API (POST /v1/ask, /v1/admin, /scim/v2, GET /openapi.json)').action(action(() => runApi(ctx)));

program
  .command('ask <question>')
  .description('ask a question through the HTTP API')
  .option('--token <jwt>', 'an access token from your IdP (default: $ASTRY_TOKEN)')
  .option('--as <email>', 'demo only: sign in as this user at the local test IdP (it logs in whoever it is asked to)')
  .option('--api <url>', 'API base URL (default: http://$ASTRY_API_HOST:$ASTRY_API_PORT)')
  .action(action(async (question: string, opts: { token?: string; as?: string; api?: string }) => {
    const token = opts.token ?? process.env.ASTRY_TOKEN ?? (opts.as ? await loginWithHint(ctx.env.ASTRY_OIDC_ISSUER, ctx.env.ASTRY_OIDC_AUDIENCE, opts.as) : await readStoredToken());
    if (!token) throw new AstryError('UNAUTHENTICATED', 'run `astry login` first (or pass --token / set ASTRY_TOKEN); --as works only with the demo IdP');
    printAnswer(await askApi(opts.api ?? `http://${ctx.env.ASTRY_API_HOST}:${ctx.env.ASTRY_API_PORT}`, token, question));
  }));

program
  .command('audit')
  .description('the tamper-evident audit trail')
  .command('verify')
  .description('recompute the hash chain and check signed checkpoints; reports the first broken entry')
  .action(action(() => auditVerify(ctx)));

program
  .command('erase <subject>')
  .description('right to erasure: delete a person\'s footprint, shred their keys, suppress re-import, write a signed bundle')
  .option('--reason <text>', 'the request reference, recorded in the signed bundle')
  .option('--out <dir>', 'directory for the compliance bundle (default: erasure-<pseudonym>)')
  .option('--no-wait', 'start (or join) the erasure workflow and return')
  .option('--no-resync', 'do not trigger the affected connections once the erasure completes')
  .action(action((subject: string, opts: EraseOptions) => eraseCommand(ctx, subject, opts)));
program
  .command('erasure')
  .description('compliance bundles of erasures')
  .command('verify <bundle>')
  .description('check a bundle: Ed25519 signature, manifest, audit checkpoint')
  .option('--public-key <pem>', 'the published audit signing key (default: the local key, if present)')
  .option('--chain', 'also check the manifest against the live audit chain', false)
  .action(action((dir: string, opts: VerifyBundleOptions) => verifyErasureCommand(ctx, dir, opts)));

program
  .command('login')
  .description('sign in through the IdP (authorization code + PKCE, loopback redirect); astry ask then uses the token')
  .option('--client-id <id>', "the CLI's public client at the IdP", 'astry-cli-rs256')
  .option('--scope <scopes>', 'scopes to request', DEFAULT_SCOPE)
  .option('--port <port>', 'loopback port for the redirect (0: any free port)', '0')
  .option('--login-hint <email>', 'pre-fill the user name (the demo IdP signs in whoever it names)')
  .action(action((opts: { clientId: string; scope: string; port: string; loginHint?: string }) => runLogin(ctx.env, opts)));

const scim = program.command('scim').description('SCIM 2.0 provisioning from Okta or Entra');
const scimToken = scim.command('token').description('bearer tokens the IdP presents to /scim/v2');
scimToken
  .command('create')
  .description('create a token (printed once)')
  .option('--name <name>', 'label, e.g. okta or entra', 'idp')
  .action(action((opts: { name: string }) => createToken(ctx, opts)));
scimToken.command('list').description('list tokens (never their values)').action(action(() => listTokens(ctx)));
scimToken.command('revoke <id>').description('revoke a token at once').action(action((id: string) => revokeToken(ctx, id)));
scim
  .command('group-clearance <group> <level>')
  .description("set (or with 'none' clear) the clearance a provisioned group gives its members")
  .action(action((group: string, level: string) => groupClearance(ctx, group, level)));

await program.parseAsync();
