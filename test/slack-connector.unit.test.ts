/**
 * Slack connector: pure ACL/identity/document rules, and the real @slack/web-api WebClient talking
 * HTTP to a tiny local server that replays Slack-shaped responses.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { after, describe, test } from 'node:test';
import { isAstryError } from '../core/errors.ts';
import { channelAcl, channelGroup, fileAcl, groupMembers, membersSpecial, unresolvedMemberIds } from '../connectors/slack/acl.ts';
import { SlackConnector } from '../connectors/slack/connector.ts';
import { buildDocuments, historyWindowStart, referencedFileIds, threadTsOf } from '../connectors/slack/documents.ts';
import { downloadFile } from '../connectors/slack/files.ts';
import { namesOf, toIdentity } from '../connectors/slack/identities.ts';
import type { RenderContext } from '../connectors/slack/render.ts';
import { ChannelSchema, MessageSchema, UserSchema, type SlackChannel, type SlackMessage } from '../connectors/slack/schemas.ts';
import type { GroupMembers, ItemError, PrincipalRef, SourceDocument, SourceIdentity } from '../connectors/types.ts';
import { generateCompany } from '../fixtures/slack/company.ts';
import { SlackEmulator } from '../fixtures/slack/emulator.ts';
import { CHANNEL, CODEWORD, FILE, USER } from '../fixtures/slack/ids.ts';

const T = 'T0ASTRY';
const TEAM = { teamId: T, domain: 'astry-demo', botUserId: 'U0ASTRY', botId: 'B0ASTRY' };

// ---------- data builders (raw Slack shapes, parsed by the connector's own schemas) ----------

function rawUser(id: string, extra: Record<string, unknown> = {}, profile: Record<string, unknown> = {}) {
  return { id, team_id: T, name: id.toLowerCase(), deleted: false, profile: { real_name: id, ...profile }, ...extra };
}
const RAW_USERS = {
  alice: rawUser('U0ALICE', {}, { email: 'Alice@Ex.com', display_name: 'alice' }),
  bob: rawUser('U0BOB', {}, { email: 'bob@ex.com', display_name: 'bob' }),
  gina: rawUser('U0GINA', { is_restricted: true }, { email: 'gina@guest.org', display_name: 'gina' }),
  sam: rawUser('U0SAM', { is_restricted: true, is_ultra_restricted: true }, { email: 'sam@guest.org' }),
  xena: rawUser('U0XENA', { team_id: 'T0ACME' }, { email: 'alice@ex.com', display_name: 'xena' }),
  dave: rawUser('U0DAVE', { deleted: true }, { email: 'dave@ex.com' }),
  bot: rawUser('U0ASTRY', { is_bot: true }, { display_name: 'astry' }),
  slackbot: rawUser('USLACKBOT', {}, { display_name: 'Slackbot' }),
};
const IDS: Record<keyof typeof RAW_USERS, SourceIdentity> = {
  alice: toIdentity(UserSchema.parse(RAW_USERS.alice), T),
  bob: toIdentity(UserSchema.parse(RAW_USERS.bob), T),
  gina: toIdentity(UserSchema.parse(RAW_USERS.gina), T),
  sam: toIdentity(UserSchema.parse(RAW_USERS.sam), T),
  xena: toIdentity(UserSchema.parse(RAW_USERS.xena), T),
  dave: toIdentity(UserSchema.parse(RAW_USERS.dave), T),
  bot: toIdentity(UserSchema.parse(RAW_USERS.bot), T),
  slackbot: toIdentity(UserSchema.parse(RAW_USERS.slackbot), T),
};
/** What users.list shows: everyone but the Slack Connect external. */
const LISTED = [IDS.alice, IDS.bob, IDS.gina, IDS.sam, IDS.dave, IDS.bot, IDS.slackbot];

function channel(id: string, name: string, flags: Record<string, boolean> = {}): SlackChannel {
  return ChannelSchema.parse({ id, name, is_channel: true, is_member: true, ...flags });
}
const general = channel('C0GENERAL', 'general');
const engineering = channel('C0ENGINEERING', 'engineering');
const privatePlans = channel('C0PRIVATEPLANS', 'private-plans', { is_private: true, is_group: true });
const sharedAcme = channel('C0SHAREDACME', 'shared-acme', { is_private: true, is_ext_shared: true });
const oldProject = channel('C0OLDPROJECT', 'old-project', { is_archived: true });
const wasPublic = channel('C0WASPUBLIC', 'was-public', { is_private: true });
const dm = ChannelSchema.parse({ id: 'D0ALICEBOB', is_im: true, is_member: true });

function keys(refs: readonly PrincipalRef[]): string[] {
  return refs.map((r) => r.key).sort();
}
function membersOf(groups: ReturnType<typeof groupMembers>, group: PrincipalRef): string[] {
  const found = groups.find((g) => g.group.key === group.key);
  assert.ok(found, `group ${group.key} listed`);
  return keys(found.members);
}
/** Everyone a document ACL lets in, given group member lists. */
function readers(acl: readonly PrincipalRef[], groups: ReturnType<typeof groupMembers>): string[] {
  return [...new Set(acl.flatMap((p) => membersOf(groups, p)))].sort();
}

const MEMBERSHIPS = [
  { channel: general, memberIds: ['U0ALICE', 'U0BOB', 'U0DAVE', 'U0ASTRY'] },
  { channel: engineering, memberIds: ['U0ALICE', 'U0BOB', 'U0GINA', 'U0SAM', 'U0ASTRY'] },
  { channel: privatePlans, memberIds: ['U0ALICE', 'U0GINA', 'U0ASTRY'] },
  { channel: sharedAcme, memberIds: ['U0ALICE', 'U0XENA', 'U0ASTRY'] },
  { channel: wasPublic, memberIds: ['U0BOB', 'U0ASTRY'] },
];
const ALL_IDS = [...LISTED, IDS.xena];
const GROUPS = groupMembers(MEMBERSHIPS, ALL_IDS, TEAM);
const ALICE = 'email:alice@ex.com';
const BOB = 'email:bob@ex.com';
const GINA = 'email:gina@guest.org';
const SAM = 'email:sam@guest.org';
const XENA = 'slack:T0ACME:U0XENA';

describe('Slack identities', () => {
  test('a full member with a profile email is linked by the lowercased email', () => {
    assert.deepEqual(IDS.alice.user, { kind: 'user', key: ALICE });
    assert.equal(IDS.alice.kind, 'member');
  });

  test('a Slack Connect external is never linked by email, even one that looks like ours', () => {
    assert.equal(IDS.xena.kind, 'external');
    assert.equal(IDS.xena.user.key, XENA);
  });

  test('guests, bots and the deactivated are classified as Slack does', () => {
    assert.equal(IDS.gina.kind, 'guest_multi');
    assert.equal(IDS.sam.kind, 'guest_single');
    assert.equal(IDS.bot.kind, 'bot');
    assert.equal(IDS.slackbot.kind, 'bot');
    assert.equal(IDS.dave.active, false);
  });

  test('a user without an email gets a Slack key', () => {
    const noEmail = toIdentity(UserSchema.parse(rawUser('U0NOMAIL')), T);
    assert.equal(noEmail.user.key, `slack:${T}:U0NOMAIL`);
    assert.equal(noEmail.email, null);
  });
});

describe('Slack ACL', () => {
  test('case 1: a public channel is readable by every active full member and by its own members', () => {
    assert.deepEqual(keys(channelAcl(general, T)), keys([membersSpecial(T), channelGroup(T, general.id)]));
    assert.deepEqual(membersOf(GROUPS, membersSpecial(T)), [ALICE, BOB]);
    assert.deepEqual(readers(channelAcl(general, T), GROUPS), [ALICE, BOB]);
  });

  test('case 1: a single-channel guest only reads the channel they are in', () => {
    assert.deepEqual(readers(channelAcl(engineering, T), GROUPS), [ALICE, BOB, GINA, SAM]);
    for (const c of [general, privatePlans, sharedAcme, wasPublic]) {
      assert.ok(!readers(channelAcl(c, T), GROUPS).includes(SAM), c.name);
    }
  });

  test('case 2: a private channel is readable by its current members only, and removal revokes', () => {
    assert.deepEqual(keys(channelAcl(privatePlans, T)), [channelGroup(T, privatePlans.id).key]);
    assert.deepEqual(readers(channelAcl(privatePlans, T), GROUPS), [ALICE, GINA]);
    const afterRemoval = groupMembers([{ channel: privatePlans, memberIds: ['U0ALICE', 'U0ASTRY'] }], ALL_IDS, TEAM);
    assert.deepEqual(readers(channelAcl(privatePlans, T), afterRemoval), [ALICE]);
  });

  test('case 3: a Slack Connect external reads the shared channel once resolved with users.info', () => {
    assert.deepEqual(unresolvedMemberIds(MEMBERSHIPS, LISTED), ['U0XENA']);
    assert.deepEqual(readers(channelAcl(sharedAcme, T), GROUPS), [ALICE, XENA]);
    const unresolved = groupMembers(MEMBERSHIPS, LISTED, TEAM);
    assert.deepEqual(readers(channelAcl(sharedAcme, T), unresolved), [ALICE]);
  });

  test('case 4: a deactivated member still listed in a channel grants nothing', () => {
    assert.ok(!membersOf(GROUPS, channelGroup(T, general.id)).includes('email:dave@ex.com'));
    assert.ok(!membersOf(GROUPS, membersSpecial(T)).includes('email:dave@ex.com'));
  });

  test('bots never appear among readers', () => {
    for (const g of GROUPS) assert.ok(!g.members.some((m) => m.key.endsWith('U0ASTRY')), g.group.key);
  });

  test('case 5: a public channel turned private is readable by its members only', () => {
    assert.deepEqual(readers(channelAcl(wasPublic, T), GROUPS), [BOB]);
  });

  test('case 5: an archived channel keeps its ACL and says it is archived', () => {
    assert.equal(oldProject.isArchived, true);
    assert.deepEqual(keys(channelAcl(oldProject, T)), keys([membersSpecial(T), channelGroup(T, oldProject.id)]));
  });

  test('case 6: a file is readable by the union of the visible channels it is shared in', () => {
    const visible = new Map([general, privatePlans, engineering].map((c) => [c.id, c]));
    const both = fileAcl([privatePlans.id, general.id], visible, T);
    assert.deepEqual(readers(both, GROUPS), [ALICE, BOB, GINA]);
    const unshared = fileAcl([privatePlans.id], visible, T);
    assert.deepEqual(readers(unshared, GROUPS), [ALICE, GINA]);
  });

  test('case 6: a file shared only in DMs or invisible channels grants nobody', () => {
    const visible = new Map([[general.id, general]]);
    assert.deepEqual(fileAcl(['D0ALICEBOB', 'C0SECRETNOBOT'], visible, T), []);
  });

  test('case 7: a DM is never a document and grants nobody', () => {
    assert.equal(dm.isDirect, true);
    assert.deepEqual(channelAcl(dm, T), []);
    const hello = msg({ ts: '1790812800.000100', user: 'U0ALICE', text: 'DM-SECRET-MARMOT' });
    assert.deepEqual(buildDocuments(dm, [hello], new Map(), CTX), []);
  });
});

// ---------- documents ----------

function msg(fields: Record<string, unknown>): SlackMessage {
  return MessageSchema.parse({ type: 'message', ...fields });
}
const CTX: RenderContext = { team: TEAM, names: namesOf(ALL_IDS) };
/** 2026-10-01T00:00:00Z */
const DAY1 = 1790812800;

describe('Slack documents', () => {
  const parent = msg({ ts: `${DAY1 + 3600}.000100`, user: 'U0ALICE', text: 'Deploy plan for <@U0BOB|bobby> today', reply_count: 1, thread_ts: `${DAY1 + 3600}.000100` });
  const reply = msg({ ts: `${DAY1 + 3700}.000200`, user: 'U0BOB', text: 'ok', thread_ts: parent.ts });
  const loose1 = msg({ ts: `${DAY1 + 86399}.000000`, user: 'U0ALICE', text: 'last words of the day' });
  const loose2 = msg({ ts: `${DAY1 + 86400}.000000`, user: 'U0BOB', text: 'first words of the next day' });
  const join = msg({ ts: `${DAY1 + 10}.000000`, user: 'U0BOB', subtype: 'channel_join', text: '<@U0BOB> has joined the channel' });
  const ours = msg({ ts: `${DAY1 + 20}.000000`, user: 'U0ASTRY', bot_id: 'B0ASTRY', subtype: 'bot_message', text: 'an answer' });
  const replies = new Map([[parent.ts, [parent, reply]]]);

  test('a thread is one document and loose messages are grouped per UTC day', () => {
    const docs = buildDocuments(general, [loose2, loose1, parent, join, ours], replies, CTX);
    assert.deepEqual(
      docs.map((d) => [d.kind, d.sourceId]),
      [
        ['slack_thread', `thread:C0GENERAL:${parent.ts}`],
        ['slack_day', 'day:C0GENERAL:2026-10-01'],
        ['slack_day', 'day:C0GENERAL:2026-10-02'],
      ],
    );
    const [thread, day1, day2] = docs;
    assert.ok(thread && day1 && day2);
    assert.equal(thread.content.type === 'text' && thread.content.text, '[2026-10-01 01:00] alice: Deploy plan for @bob today\n[2026-10-01 01:01] bob: ok');
    assert.equal(thread.title, '#general — thread: Deploy plan for @bob today');
    assert.equal(thread.url, `https://astry-demo.slack.com/archives/C0GENERAL/p${parent.ts.replace('.', '')}`);
    assert.deepEqual(thread.updatedAt, new Date(Math.floor(Number(reply.ts) * 1000)));
    assert.equal(day1.content.type === 'text' && day1.content.text, '[2026-10-01 23:59] alice: last words of the day');
    assert.equal(day2.title, '#general — 2026-10-02');
    assert.equal(day2.url, 'https://astry-demo.slack.com/archives/C0GENERAL');
    assert.deepEqual(keys(day2.acl), keys(channelAcl(general, T)));
  });

  test('join notices and our own bot answers are not indexed', () => {
    const docs = buildDocuments(general, [join, ours], new Map(), CTX);
    assert.deepEqual(docs, []);
  });

  test('adding a reply changes the thread version; rebuilding unchanged input keeps it', () => {
    const v1 = buildDocuments(general, [parent], replies, CTX)[0]?.contentVersion;
    const again = buildDocuments(general, [parent], new Map([[parent.ts, [parent, reply]]]), CTX)[0]?.contentVersion;
    const reply2 = msg({ ts: `${DAY1 + 3800}.000300`, user: 'U0GINA', text: 'me too', thread_ts: parent.ts });
    const v2 = buildDocuments(general, [parent], new Map([[parent.ts, [parent, reply, reply2]]]), CTX)[0]?.contentVersion;
    assert.ok(v1 !== undefined && v2 !== undefined);
    assert.equal(again, v1);
    assert.notEqual(v2, v1);
  });

  test('a thread whose replies could not be fetched is left out, not truncated', () => {
    const docs = buildDocuments(general, [parent, loose1], new Map(), CTX);
    assert.deepEqual(docs.map((d) => d.kind), ['slack_day']);
    assert.deepEqual(threadTsOf([parent, loose1]), [parent.ts]);
  });

  test('a new reply to an old thread rebuilds the thread without its parent in the history window', () => {
    const docs = buildDocuments(general, [], replies, CTX);
    assert.deepEqual(docs.map((d) => d.sourceId), [`thread:C0GENERAL:${parent.ts}`]);
  });

  test('a reply also sent to the channel stays in its thread only', () => {
    const broadcast = msg({ ts: `${DAY1 + 3900}.000000`, user: 'U0BOB', subtype: 'thread_broadcast', text: 'fyi', thread_ts: parent.ts });
    const docs = buildDocuments(general, [broadcast, parent], replies, CTX);
    assert.deepEqual(docs.map((d) => d.kind), ['slack_thread']);
  });

  test('an incremental window starts at the UTC midnight of the last message, inclusive', () => {
    assert.equal(historyWindowStart(`${DAY1 + 86399}.000000`), `${DAY1 - 1}.999999`);
    assert.equal(historyWindowStart(`${DAY1}.000000`), `${DAY1 - 1}.999999`);
  });
});

// ---------- WebClient against a local server ----------

type Reply = { status?: number; headers?: Record<string, string>; body: unknown };
type Route = (params: URLSearchParams) => Reply;

interface LocalSlack {
  apiUrl: string;
  origin: string;
  calls: { method: string; params: URLSearchParams; auth: string | undefined }[];
  routes: Map<string, Route>;
  raw: Map<string, (req: IncomingMessage, res: ServerResponse) => void>;
}

/** Servers and emulators started by the tests, stopped at the end. */
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function localSlack(): Promise<LocalSlack> {
  const state: Omit<LocalSlack, 'apiUrl' | 'origin'> = { calls: [], routes: new Map(), raw: new Map() };
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const raw = state.raw.get(path);
    if (raw !== undefined) return raw(req, res);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(Buffer.from(chunk));
    const method = path.replace(/^\/api\//, '');
    const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    state.calls.push({ method, params, auth: req.headers.authorization });
    const route = state.routes.get(method);
    const reply = route === undefined ? { body: { ok: false, error: 'unknown_method' } } : route(params);
    res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
    res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
  });
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  const { port } = address;
  const origin = `http://127.0.0.1:${port}`;
  return { ...state, apiUrl: `${origin}/api/`, origin };
}

const RETRY = { retries: 1, factor: 1, minTimeout: 5, maxTimeout: 5 };
function connector(slack: LocalSlack, maxFileBytes = 1024): SlackConnector {
  return new SlackConnector({ token: 'xoxb-test', apiUrl: slack.apiUrl, maxFileBytes, retryConfig: RETRY });
}
const authOk: Route = () => ({ body: { ok: true, team_id: T, user_id: 'U0ASTRY', bot_id: 'B0ASTRY', url: 'https://astry-demo.slack.com/' } });

async function rejectsWith(promise: Promise<unknown>, code: Parameters<typeof isAstryError>[1]): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAstryError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
}

describe('SlackConnector over HTTP', () => {
  test('users.list is read page by page with the cursor and the bot token', async () => {
    const slack = await localSlack();
    slack.routes.set('auth.test', authOk);
    const pages: Record<string, Reply> = {
      '': { body: { ok: true, members: [RAW_USERS.alice], response_metadata: { next_cursor: 'c2' } } },
      c2: { body: { ok: true, members: [RAW_USERS.bob, RAW_USERS.dave], response_metadata: { next_cursor: 'c3' } } },
      c3: { body: { ok: true, members: [RAW_USERS.gina], response_metadata: { next_cursor: '' } } },
    };
    slack.routes.set('users.list', (p) => pages[p.get('cursor') ?? ''] ?? { body: { ok: false, error: 'invalid_cursor' } });
    const ids = await connector(slack).identities();
    assert.deepEqual(ids.map((i) => i.sourceUserId), ['U0ALICE', 'U0BOB', 'U0DAVE', 'U0GINA']);
    const listCalls = slack.calls.filter((c) => c.method === 'users.list');
    assert.deepEqual(listCalls.map((c) => c.params.get('cursor')), [null, 'c2', 'c3']);
    assert.ok(listCalls.every((c) => c.params.get('limit') === '200' && c.auth === 'Bearer xoxb-test'));
  });

  test('a 429 is retried after the Retry-After Slack asked for', async () => {
    const slack = await localSlack();
    let calls = 0;
    slack.routes.set('auth.test', (p) => (++calls === 1 ? { status: 429, headers: { 'retry-after': '1' }, body: {} } : authOk(p)));
    const started = Date.now();
    const team = await connector(slack).team();
    assert.equal(team.domain, 'astry-demo');
    assert.equal(calls, 2);
    assert.ok(Date.now() - started >= 950, 'waited Retry-After');
  });

  test('rate limiting that outlasts the retries is SOURCE_RATE_LIMITED', async () => {
    const slack = await localSlack();
    slack.routes.set('auth.test', () => ({ status: 429, headers: { 'retry-after': '0' }, body: {} }));
    await rejectsWith(connector(slack).team(), 'SOURCE_RATE_LIMITED');
    assert.equal(slack.calls.length, 1 + RETRY.retries);
  });

  test('a revoked token is SOURCE_AUTH_FAILED', async () => {
    const slack = await localSlack();
    slack.routes.set('auth.test', () => ({ body: { ok: false, error: 'token_revoked' } }));
    await rejectsWith(connector(slack).team(), 'SOURCE_AUTH_FAILED');
  });

  test('a Slack outage is SOURCE_UNAVAILABLE, after retrying', async () => {
    const slack = await localSlack();
    slack.routes.set('auth.test', () => ({ status: 503, body: 'down' }));
    await rejectsWith(connector(slack).team(), 'SOURCE_UNAVAILABLE');
    assert.equal(slack.calls.length, 1 + RETRY.retries);
    const nobody = new SlackConnector({ token: 'x', apiUrl: 'http://127.0.0.1:9/api/', maxFileBytes: 1, retryConfig: { retries: 0 } });
    await rejectsWith(nobody.team(), 'SOURCE_UNAVAILABLE');
  });

  test('a response that fails its schema is SOURCE_BAD_DATA', async () => {
    const slack = await localSlack();
    slack.routes.set('auth.test', authOk);
    slack.routes.set('conversations.history', () => ({ body: { ok: true, messages: [{ text: 'no ts' }] } }));
    const history = connector(slack).history('C0GENERAL');
    await rejectsWith(history.next(), 'SOURCE_BAD_DATA');
  });

  test('a body that is not JSON is SOURCE_BAD_DATA', async () => {
    const slack = await localSlack();
    slack.routes.set('auth.test', () => ({ body: '<html>proxy error</html>' }));
    await rejectsWith(connector(slack).team(), 'SOURCE_BAD_DATA');
  });

  test('a cursor that repeats is SOURCE_BAD_DATA instead of an endless loop', async () => {
    const slack = await localSlack();
    slack.routes.set('conversations.members', () => ({ body: { ok: true, members: ['U0ALICE'], response_metadata: { next_cursor: 'again' } } }));
    await rejectsWith(connector(slack).members('C0GENERAL'), 'SOURCE_BAD_DATA');
  });

  test('channels lists only channels the bot is in, and never DMs', async () => {
    const slack = await localSlack();
    slack.routes.set('conversations.list', (p) => {
      assert.equal(p.get('types'), 'public_channel,private_channel');
      assert.equal(p.get('exclude_archived'), 'false');
      return {
        body: {
          ok: true,
          channels: [
            { id: 'C0GENERAL', name: 'general', is_channel: true, is_member: true },
            { id: 'C0SECRETNOBOT', name: 'secret', is_private: true, is_member: false },
            { id: 'D0ALICEBOB', is_im: true, is_member: true },
            { id: 'G0MPIMABG', name: 'mpdm-a-b-g', is_mpim: true, is_member: true },
            { id: 'C0OLDPROJECT', name: 'old-project', is_archived: true, is_member: true },
          ],
        },
      };
    });
    const channels = await connector(slack).channels();
    assert.deepEqual(channels.map((c) => [c.id, c.isArchived]), [['C0GENERAL', false], ['C0OLDPROJECT', true]]);
  });

  test('history passes oldest and yields pages newest first', async () => {
    const slack = await localSlack();
    slack.routes.set('conversations.history', (p) => {
      assert.equal(p.get('oldest'), '100.000000');
      return p.get('cursor') === null
        ? { body: { ok: true, messages: [{ ts: '300.000000', text: 'c' }, { ts: '200.000000', text: 'b' }], response_metadata: { next_cursor: 'n' } } }
        : { body: { ok: true, messages: [{ ts: '150.000000', text: 'a' }] } };
    });
    const pages: string[][] = [];
    for await (const page of connector(slack).history('C0GENERAL', { oldest: '100.000000' })) pages.push(page.map((m) => m.ts));
    assert.deepEqual(pages, [['300.000000', '200.000000'], ['150.000000']]);
  });

  test("one thread's replies failing is recorded for that thread and the others are kept", async () => {
    const slack = await localSlack();
    slack.routes.set('conversations.replies', (p) =>
      p.get('ts') === '2.000000'
        ? { body: { ok: false, error: 'thread_not_found' } }
        : { body: { ok: true, messages: [{ ts: p.get('ts'), text: 'parent', reply_count: 1 }, { ts: '9.000000', text: 'r', thread_ts: p.get('ts') }] } },
    );
    const result = await connector(slack).collectReplies('C0GENERAL', ['1.000000', '2.000000', '3.000000']);
    assert.deepEqual([...result.byThreadTs.keys()], ['1.000000', '3.000000']);
    assert.deepEqual(result.errors.map((e) => [e.itemId, e.code]), [['thread:C0GENERAL:2.000000', 'NOT_FOUND']]);
  });

  test('an unknown external resolves to null, a known one to an unlinked identity', async () => {
    const slack = await localSlack();
    slack.routes.set('auth.test', authOk);
    slack.routes.set('users.info', (p) =>
      p.get('user') === 'U0XENA' ? { body: { ok: true, user: RAW_USERS.xena } } : { body: { ok: false, error: 'user_not_found' } },
    );
    const c = connector(slack);
    assert.equal(await c.resolveExternal('U0NOBODY'), null);
    assert.equal((await c.resolveExternal('U0XENA'))?.user.key, XENA);
  });

  test('a file shared in a private channel and #general is one document readable by both; unshared or deleted it is none', async () => {
    const slack = await localSlack();
    slack.routes.set('auth.test', authOk);
    const content = Buffer.from('ROADMAP-IBIS');
    let groups = ['C0PRIVATEPLANS'];
    let channels = ['C0GENERAL'];
    slack.routes.set('files.info', (p) =>
      p.get('file') === 'F0GONE'
        ? { body: { ok: false, error: 'file_deleted' } }
        : {
            body: {
              ok: true,
              file: {
                id: 'F0ROADMAP', name: 'roadmap.txt', title: 'Roadmap', mimetype: 'text/plain', size: content.length,
                created: DAY1, timestamp: DAY1, url_private: `${slack.origin}/files/roadmap.txt`, channels, groups, ims: ['D0ALICEBOB'],
              },
            },
          },
    );
    slack.raw.set('/files/roadmap.txt', (req, res) => {
      res.writeHead(req.headers.authorization === 'Bearer xoxb-test' ? 200 : 403, { 'content-type': 'text/plain' });
      res.end(content);
    });
    const visible = new Map([general, privatePlans].map((c) => [c.id, c]));
    const c = connector(slack);
    const doc = await c.fileDocument('F0ROADMAP', visible);
    assert.ok(doc);
    assert.equal(doc.sourceId, 'file:F0ROADMAP');
    assert.equal(doc.contentVersion, `F0ROADMAP:${DAY1}:${content.length}`);
    assert.deepEqual(keys(doc.acl), keys([membersSpecial(T), channelGroup(T, general.id), channelGroup(T, privatePlans.id)]));
    assert.ok(doc.content.type === 'file');
    assert.deepEqual(await doc.content.fetch(), content);

    channels = [];
    const unshared = await c.fileDocument('F0ROADMAP', visible);
    assert.deepEqual(keys(unshared?.acl ?? []), [channelGroup(T, privatePlans.id).key]);
    groups = [];
    assert.equal(await c.fileDocument('F0ROADMAP', visible), null);
    assert.equal(await c.fileDocument('F0GONE', visible), null);
  });

  test('the constructor rejects a bad configuration', () => {
    assert.throws(() => new SlackConnector({ token: '', apiUrl: 'http://x/', maxFileBytes: 1 }), (e) => isAstryError(e, 'CONFIG_INVALID'));
    assert.throws(() => new SlackConnector({ token: 't', apiUrl: 'nope', maxFileBytes: 1 }), (e) => isAstryError(e, 'CONFIG_INVALID'));
    assert.throws(() => new SlackConnector({ token: 't', apiUrl: 'http://x/', maxFileBytes: 0 }), (e) => isAstryError(e, 'CONFIG_INVALID'));
  });
});

describe('Slack file download', () => {
  test('a download over the limit aborts with TOO_LARGE as soon as the limit is crossed', async () => {
    const slack = await localSlack();
    let written = 0;
    let closed: () => void = () => {};
    const clientGone = new Promise<void>((resolve) => (closed = resolve));
    slack.raw.set('/files/endless.bin', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(1024, 1);
      const timer = setInterval(() => {
        written += chunk.length;
        res.write(chunk);
      }, 2);
      res.on('close', () => {
        clearInterval(timer);
        closed();
      });
    });
    const target = { url: `${slack.origin}/files/endless.bin`, token: 't', maxBytes: 4096, allowedOrigins: new Set([slack.origin]), mimeType: 'application/octet-stream' };
    await rejectsWith(downloadFile(target), 'TOO_LARGE');
    await clientGone;
    assert.ok(written < 64 * 1024, `stopped early (server wrote ${written} bytes)`);
  });

  test('a declared size over the limit is refused before reading the body', async () => {
    const slack = await localSlack();
    slack.raw.set('/files/big.bin', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '100000' });
      res.end(Buffer.alloc(100000));
    });
    const target = { url: `${slack.origin}/files/big.bin`, token: 't', maxBytes: 10, allowedOrigins: new Set([slack.origin]), mimeType: 'application/pdf' };
    await rejectsWith(downloadFile(target), 'TOO_LARGE');
  });

  test('the token is never sent to a host other than Slack', async () => {
    const target = { url: 'https://evil.example/f', token: 't', maxBytes: 10, allowedOrigins: new Set<string>(), mimeType: 'text/plain' };
    await rejectsWith(downloadFile(target), 'SOURCE_BAD_DATA');
  });

  test("Slack's sign-in page served instead of a file is SOURCE_AUTH_FAILED", async () => {
    const slack = await localSlack();
    slack.raw.set('/files/login', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<html>Sign in to Slack</html>');
    });
    const target = { url: `${slack.origin}/files/login`, token: 't', maxBytes: 1000, allowedOrigins: new Set([slack.origin]), mimeType: 'application/pdf' };
    await rejectsWith(downloadFile(target), 'SOURCE_AUTH_FAILED');
  });
});

// ---------- against the Slack emulator (fixtures/slack): the seeded company's cases end to end ----------

interface Snapshot {
  identities: SourceIdentity[];
  channels: SlackChannel[];
  groups: GroupMembers[];
  documents: SourceDocument[];
  errors: ItemError[];
}

/** One full read, the way a sync uses the connector: principals, then each channel's documents and files. */
async function readAll(c: SlackConnector): Promise<Snapshot> {
  const team = await c.team();
  const listed = await c.identities();
  const channels = await c.channels();
  const memberships = await Promise.all(channels.map(async (channel) => ({ channel, memberIds: await c.members(channel.id) })));
  const externals = await Promise.all(unresolvedMemberIds(memberships, listed).map((id) => c.resolveExternal(id)));
  const identities = [...listed, ...externals.filter((i): i is SourceIdentity => i !== null)];
  const groups = groupMembers(memberships, identities, team);
  const ctx: RenderContext = { team, names: namesOf(identities) };
  const visible = new Map(channels.map((ch) => [ch.id, ch]));
  const documents: SourceDocument[] = [];
  const errors: ItemError[] = [];
  const fileIds = new Set<string>();
  for (const channel of channels) {
    const messages: SlackMessage[] = [];
    for await (const page of c.history(channel.id)) messages.push(...page);
    const replies = await c.collectReplies(channel.id, threadTsOf(messages));
    errors.push(...replies.errors);
    documents.push(...buildDocuments(channel, messages, replies.byThreadTs, ctx));
    for (const id of referencedFileIds([...messages, ...[...replies.byThreadTs.values()].flat()])) fileIds.add(id);
  }
  for (const id of fileIds) {
    const doc = await c.fileDocument(id, visible);
    if (doc !== null) documents.push(doc);
  }
  return { identities, channels, groups, documents, errors };
}

/** The Slack user ids an ACL lets in. */
function userIdsReading(acl: readonly PrincipalRef[], snap: Snapshot): string[] {
  const idsByKey = new Map<string, string[]>();
  for (const i of snap.identities) idsByKey.set(i.user.key, [...(idsByKey.get(i.user.key) ?? []), i.sourceUserId]);
  const keysIn = new Set(acl.flatMap((p) => snap.groups.find((g) => g.group.key === p.key)?.members ?? []).map((m) => m.key));
  return [...keysIn].flatMap((k) => idsByKey.get(k) ?? []).sort();
}

function textOf(doc: SourceDocument): string {
  return doc.content.type === 'text' ? doc.content.text : '';
}

async function emulated(): Promise<{ emu: SlackEmulator; c: SlackConnector }> {
  const emu = await SlackEmulator.start(generateCompany());
  cleanups.push(() => emu.close());
  const c = new SlackConnector({ token: emu.token, apiUrl: emu.url, maxFileBytes: 1024 * 1024, retryConfig: RETRY });
  return { emu, c };
}

describe('SlackConnector against the Slack emulator', () => {
  test('every channel the bot reads is readable by exactly the people the seeded company expects', async () => {
    const { emu, c } = await emulated();
    const snap = await readAll(c);
    assert.deepEqual(snap.errors, []);
    const ids = snap.channels.map((ch) => ch.id);
    for (const never of [CHANNEL.secretNoBot, CHANNEL.dmAliceBob, CHANNEL.mpim]) assert.ok(!ids.includes(never), never);
    for (const ch of snap.channels) {
      assert.deepEqual(userIdsReading(channelAcl(ch, T), snap), emu.company.expected.channels[ch.id], ch.name);
    }
    assert.ok(snap.identities.some((i) => i.sourceUserId === USER.xena && i.user.key === XENA));
  });

  test('each channel\'s codeword is in its documents, and no DM or bot-less channel text is anywhere', async () => {
    const { c } = await emulated();
    const snap = await readAll(c);
    const texts = snap.documents.map(textOf);
    for (const key of ['general', 'engineering', 'privatePlans', 'sharedAcme', 'oldProject', 'wasPublic'] as const) {
      const channelId = CHANNEL[key];
      const own = snap.documents.filter((d) => d.containerId === channelId && d.kind !== 'slack_file');
      assert.ok(own.length > 0 && own.every((d) => textOf(d).includes(CODEWORD[key])), key);
    }
    for (const secret of [CODEWORD.dmAliceBob, CODEWORD.mpim, CODEWORD.secretNoBot]) {
      assert.ok(!texts.some((t) => t.includes(secret)), secret);
    }
    assert.ok(snap.documents.every((d) => d.acl.length > 0));
  });

  test('every visible file is readable by exactly the people the seeded company expects, and downloads', async () => {
    const { emu, c } = await emulated();
    const snap = await readAll(c);
    const files = snap.documents.filter((d) => d.kind === 'slack_file');
    assert.ok(files.some((f) => f.sourceId === `file:${FILE.roadmapPdf}`));
    assert.ok(!files.some((f) => f.sourceId === `file:${FILE.dmTxt}` || f.sourceId === `file:${FILE.secretTxt}`));
    for (const f of files) {
      assert.deepEqual(userIdsReading(f.acl, snap), emu.company.expected.files[f.sourceId.slice('file:'.length)], f.sourceId);
    }
    const roadmap = files.find((f) => f.sourceId === `file:${FILE.roadmapPdf}`);
    assert.ok(roadmap?.content.type === 'file');
    assert.equal((await roadmap.content.fetch()).subarray(0, 4).toString('latin1'), '%PDF');
  });

  test('removals, unshares and deactivations revoke on the next read', async () => {
    const { emu, c } = await emulated();
    emu.removeMember(CHANNEL.privatePlans, USER.gina);
    emu.unshareFile(FILE.roadmapPdf, CHANNEL.general);
    emu.deactivateUser(USER.bob);
    emu.setPrivate(CHANNEL.engineering);
    const snap = await readAll(c);
    const plans = snap.channels.find((ch) => ch.id === CHANNEL.privatePlans);
    assert.ok(plans);
    assert.deepEqual(userIdsReading(channelAcl(plans, T), snap), [USER.alice]);
    const roadmap = snap.documents.find((d) => d.sourceId === `file:${FILE.roadmapPdf}`);
    assert.deepEqual(userIdsReading(roadmap?.acl ?? [], snap), [USER.alice]);
    for (const g of snap.groups) assert.ok(!g.members.some((m) => m.key === BOB), g.group.key);
    const eng = snap.channels.find((ch) => ch.id === CHANNEL.engineering);
    assert.ok(eng?.isPrivate);
    assert.deepEqual(keys(channelAcl(eng, T)), [channelGroup(T, eng.id).key]);
  });

  test('a new reply changes only its thread\'s version', async () => {
    const { emu, c } = await emulated();
    const before = await readAll(c);
    const thread = before.documents.find((d) => d.kind === 'slack_thread' && d.containerId === CHANNEL.general);
    assert.ok(thread);
    emu.postMessage(CHANNEL.general, USER.alice, 'one more thing', { threadTs: thread.sourceId.split(':')[2] ?? '' });
    const after = await readAll(c);
    const changed = after.documents.filter((d) => before.documents.find((b) => b.sourceId === d.sourceId)?.contentVersion !== d.contentVersion);
    assert.deepEqual(changed.map((d) => d.sourceId), [thread.sourceId]);
  });

  test('Retry-After from the emulator is honoured; a malformed body, an outage and a huge file fail with their codes', async () => {
    const { emu, c } = await emulated();
    emu.faults.rateLimit('users.list', 1, 1);
    const started = Date.now();
    assert.ok((await c.identities()).length > 0);
    assert.ok(Date.now() - started >= 950);
    emu.faults.malformed('conversations.list');
    await rejectsWith(c.channels(), 'SOURCE_BAD_DATA');
    emu.faults.serverError('conversations.members', 1 + RETRY.retries);
    await rejectsWith(c.members(CHANNEL.general), 'SOURCE_UNAVAILABLE');
    emu.faults.hugeFile(FILE.roadmapPdf, 50 * 1024 * 1024);
    const shares = await c.fileShares(FILE.roadmapPdf);
    assert.ok(shares);
    await rejectsWith(c.download(shares.file), 'TOO_LARGE');
  });
});
