import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, LogLevel, WebClient } from '@slack/web-api';
import mammoth from 'mammoth';
import { extractText, getDocumentProxy } from 'unpdf';
import { countMessages, generateCompany } from '../fixtures/slack/company.ts';
import { SlackEmulator } from '../fixtures/slack/emulator.ts';
import { DOWNLOAD_METHOD, HUGE_FILE_BYTES } from '../fixtures/slack/faults.ts';
import { CHANNEL, CODEWORD, EPOCH_SECONDS, FILE, FILE_CODEWORD, USER } from '../fixtures/slack/ids.ts';
import { tsMicros } from '../fixtures/slack/timeline.ts';

const company = generateCompany({ seed: 42, scale: 1 });

function client(emu: SlackEmulator, token = emu.token): WebClient {
  return new WebClient(token, {
    slackApiUrl: emu.url,
    retryConfig: { retries: 2, factor: 1, minTimeout: 10, maxTimeout: 50 },
    logLevel: LogLevel.ERROR,
  });
}

/** The `data.error` of a WebClient platform error, or fails. */
async function platformError(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (err) {
    assert.ok(err instanceof Error && 'code' in err && err.code === ErrorCode.PlatformError, `not a platform error: ${String(err)}`);
    assert.ok('data' in err && typeof err.data === 'object' && err.data !== null && 'error' in err.data);
    return String(err.data.error);
  }
  assert.fail('expected the call to fail');
}

function str(v: unknown): string {
  assert.equal(typeof v, 'string');
  return String(v);
}

/** The `id`/`ts` strings of a page's items (WebClient.paginate pages are untyped). */
function field(page: object, listKey: string, key: 'id' | 'ts'): string[] {
  const list: unknown = Reflect.get(page, listKey);
  assert.ok(Array.isArray(list));
  return list.map((item: unknown) => {
    assert.ok(item !== null && typeof item === 'object' && key in item);
    const value: unknown = Reflect.get(item, key);
    return str(value);
  });
}

async function download(url: string, token?: string): Promise<Response> {
  return fetch(url, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
}

async function fileUrl(web: WebClient, fileId: string): Promise<string> {
  const info = await web.files.info({ file: fileId });
  return str(info.file?.url_private);
}

describe('seeded Slack company', () => {
  it('is identical for the same seed and differs for another', () => {
    assert.equal(JSON.stringify(generateCompany({ seed: 42 })), JSON.stringify(company));
    assert.notEqual(JSON.stringify(generateCompany({ seed: 43 })), JSON.stringify(company));
  });

  it('has strictly increasing ts per channel, from 2026-10-01, with consistent threads', () => {
    for (const [chId, msgs] of Object.entries(company.messages)) {
      for (let i = 1; i < msgs.length; i++) {
        assert.ok(tsMicros(msgs[i]?.ts ?? '') > tsMicros(msgs[i - 1]?.ts ?? ''), `${chId} ts order`);
      }
      for (const m of msgs) {
        assert.ok(tsMicros(m.ts) >= EPOCH_SECONDS * 1e6);
        if (m.reply_count) {
          const replies = msgs.filter((r) => r.thread_ts === m.ts && r.ts !== m.ts);
          assert.equal(m.reply_count, replies.length);
          assert.equal(m.latest_reply, replies.at(-1)?.ts);
        }
      }
    }
    const threaded = Object.entries(company.messages).filter(([, msgs]) => msgs.some((m) => (m.reply_count ?? 0) > 0));
    assert.ok(threaded.length >= 5);
  });

  it('puts each channel codeword in every message of that channel', () => {
    for (const [key, id] of Object.entries(CHANNEL)) {
      const word = CODEWORD[key as keyof typeof CODEWORD];
      const msgs = (company.messages[id] ?? []).filter((m) => m.subtype !== 'channel_join');
      assert.ok(msgs.length > 0);
      for (const m of msgs) assert.ok(m.text.includes(word), `${id}: ${m.text}`);
    }
  });

  it('lists the expected readers of the named cases', () => {
    const { channels, files } = company.expected;
    assert.deepEqual(channels[CHANNEL.privatePlans], [USER.alice, USER.gina]);
    assert.deepEqual(channels[CHANNEL.sharedAcme], [USER.alice, USER.xena]);
    assert.deepEqual(channels[CHANNEL.wasPublic], [USER.bob]);
    assert.deepEqual(channels[CHANNEL.secretNoBot], []);
    assert.deepEqual(channels[CHANNEL.dmAliceBob], []);
    assert.ok(!channels[CHANNEL.general]?.includes(USER.dave) && !channels[CHANNEL.general]?.includes(USER.gina));
    assert.ok(channels[CHANNEL.engineering]?.includes(USER.sam) && channels[CHANNEL.engineering]?.includes(USER.gina));
    assert.ok(files[FILE.roadmapPdf]?.includes(USER.gina) && files[FILE.roadmapPdf]?.includes(USER.bob));
  });

  it('scale 100 yields over 20k messages in well under a few seconds', () => {
    const started = performance.now();
    const big = generateCompany({ scale: 100 });
    const elapsed = performance.now() - started;
    assert.ok(countMessages(big) >= 20_000, `${countMessages(big)} messages`);
    assert.ok(elapsed < 3000, `${elapsed} ms`);
  });
});

describe('Slack emulator with the real WebClient', () => {
  let emu: SlackEmulator;
  let web: WebClient;
  before(async () => {
    emu = await SlackEmulator.start(company);
    web = client(emu);
  });
  after(() => emu.close());

  it('answers auth.test for the bot token and invalid_auth for any other', async () => {
    const me = await web.auth.test();
    assert.equal(me.user_id, USER.astry);
    assert.equal(me.team_id, 'T0ASTRY');
    assert.equal(await platformError(client(emu, 'xoxb-wrong').auth.test()), 'invalid_auth');
  });

  it('walks every page of conversations.list, without DMs or the bot-less private channel', async () => {
    emu.resetRequests();
    const ids: string[] = [];
    for await (const page of web.paginate('conversations.list', { types: 'public_channel,private_channel', limit: 2 })) {
      ids.push(...field(page, 'channels', 'id'));
    }
    assert.ok(emu.calls('conversations.list').length > 3);
    const expected = company.channels.filter((c) => !c.is_im && !c.is_mpim && c.id !== CHANNEL.secretNoBot).map((c) => c.id);
    assert.deepEqual(ids.sort(), expected.sort());
    const open = await web.conversations.list({ types: 'public_channel,private_channel', exclude_archived: true, limit: 100 });
    assert.ok(!open.channels?.some((c) => c.id === CHANNEL.oldProject));
    assert.equal(open.response_metadata?.next_cursor, '');
    const dms = await web.conversations.list({ types: 'im,mpim' });
    assert.deepEqual(dms.channels?.map((c) => c.id).sort(), [CHANNEL.dmAliceBob, CHANNEL.mpim]);
  });

  it('keeps #secret-no-bot invisible to the bot', async () => {
    assert.equal(await platformError(web.conversations.info({ channel: CHANNEL.secretNoBot })), 'channel_not_found');
    assert.equal(await platformError(web.conversations.history({ channel: CHANNEL.secretNoBot })), 'channel_not_found');
    assert.equal(await platformError(web.files.info({ file: FILE.secretTxt })), 'file_not_found');
  });

  it('pages conversations.history newest first with exclusive oldest', async () => {
    const all: string[] = [];
    for await (const page of web.paginate('conversations.history', { channel: CHANNEL.general, limit: 5 })) {
      all.push(...field(page, 'messages', 'ts'));
    }
    const topLevel = (company.messages[CHANNEL.general] ?? []).filter((m) => !m.thread_ts || m.thread_ts === m.ts);
    assert.deepEqual(all, topLevel.map((m) => m.ts).reverse());
    const pivot = all[3] ?? '';
    const newer = await web.conversations.history({ channel: CHANNEL.general, oldest: pivot });
    assert.deepEqual(newer.messages?.map((m) => m.ts), all.slice(0, 3));
    assert.equal(newer.has_more, false);
  });

  it('returns a thread parent first, then its replies', async () => {
    const parent = (company.messages[CHANNEL.engineering] ?? []).find((m) => (m.reply_count ?? 0) >= 3);
    assert.ok(parent);
    const res = await web.conversations.replies({ channel: CHANNEL.engineering, ts: parent.ts });
    assert.equal(res.messages?.[0]?.ts, parent.ts);
    assert.equal(res.messages?.length, (parent.reply_count ?? 0) + 1);
    assert.ok(res.messages?.slice(1).every((m) => m.thread_ts === parent.ts));
  });

  it('lists deactivated members and resolves Slack Connect externals only through users.info', async () => {
    const members = await web.conversations.members({ channel: CHANNEL.general });
    assert.ok(members.members?.includes(USER.dave));
    const listed: string[] = [];
    for await (const page of web.paginate('users.list', { limit: 3 })) {
      listed.push(...field(page, 'members', 'id'));
    }
    assert.ok(listed.includes(USER.alice) && listed.includes(USER.dave) && !listed.includes(USER.xena));
    const xena = await web.users.info({ user: USER.xena });
    assert.equal(xena.user?.team_id, 'T0ACME');
    assert.equal(xena.user?.profile?.email, 'xena@acme.example');
    const acme = await web.conversations.members({ channel: CHANNEL.sharedAcme });
    assert.ok(acme.members?.includes(USER.xena));
    assert.equal(await platformError(web.users.info({ user: 'U0NOBODY' })), 'user_not_found');
  });

  it('retries a 429 with Retry-After and a 500, then succeeds', async () => {
    emu.reset();
    emu.faults.rateLimit('conversations.info', 2, 0);
    const info = await web.conversations.info({ channel: CHANNEL.general });
    assert.equal(info.channel?.name, 'general');
    assert.deepEqual(emu.calls('conversations.info').map((r) => r.status), [429, 429, 200]);
    emu.faults.serverError('conversations.info', 1);
    assert.ok((await web.conversations.info({ channel: CHANNEL.general })).ok);
    emu.faults.rateLimit('auth.test', 1, 7);
    const raw = await fetch(`${emu.url}auth.test`, { method: 'POST', headers: { Authorization: `Bearer ${emu.token}` } });
    assert.deepEqual([raw.status, raw.headers.get('retry-after')], [429, '7']);
    emu.faults.rateLimit('auth.test', 3, 0);
    await assert.rejects(web.auth.test(), /rate limit/i);
  });

  it('surfaces a malformed body as a platform error', async () => {
    emu.faults.malformed('conversations.list', 1);
    const error = await platformError(web.conversations.list({}));
    assert.match(error, /^\{"ok":true/);
  });

  it('serves file bytes only with the bearer token; the PDF and DOCX extract', async () => {
    const pdfUrl = await fileUrl(web, FILE.specPdf);
    assert.equal((await download(pdfUrl)).status, 403);
    assert.equal((await download(pdfUrl, 'xoxb-wrong')).status, 403);
    const pdf = new Uint8Array(await (await download(pdfUrl, emu.token)).arrayBuffer());
    const { text } = await extractText(await getDocumentProxy(pdf), { mergePages: true });
    assert.ok(text.includes(FILE_CODEWORD.specPdf), text);
    const docx = Buffer.from(await (await download(await fileUrl(web, FILE.planDocx), emu.token)).arrayBuffer());
    const { value } = await mammoth.extractRawText({ buffer: docx });
    assert.ok(value.includes(FILE_CODEWORD.planDocx), value);
  });

  it('lists where a file is shared: roadmap.pdf is in #general and #private-plans', async () => {
    const { file } = await web.files.info({ file: FILE.roadmapPdf });
    assert.deepEqual(file?.channels, [CHANNEL.general]);
    assert.deepEqual(file?.groups, [CHANNEL.privatePlans]);
    const history = await web.conversations.history({ channel: CHANNEL.privatePlans, limit: 100 });
    const carrying = history.messages?.find((m) => m.files?.some((f) => f.id === FILE.roadmapPdf));
    assert.equal(carrying?.files?.[0]?.name, 'roadmap.pdf');
    assert.ok(str(carrying?.files?.[0]?.url_private).startsWith(emu.baseUrl));
  });

  it('corrupts or inflates a download on demand', async () => {
    emu.faults.corruptFile(FILE.specPdf);
    const bad = new Uint8Array(await (await download(await fileUrl(web, FILE.specPdf), emu.token)).arrayBuffer());
    await assert.rejects(async () => extractText(await getDocumentProxy(bad)));
    emu.faults.hugeFile(FILE.welcomeTxt);
    const url = await fileUrl(web, FILE.welcomeTxt);
    assert.equal((await web.files.info({ file: FILE.welcomeTxt })).file?.size, HUGE_FILE_BYTES);
    const res = await download(url, emu.token);
    let bytes = 0;
    for await (const chunk of res.body ?? []) bytes += chunk.length;
    assert.equal(bytes, HUGE_FILE_BYTES);
    emu.faults.reset();
    assert.equal((await download(url, emu.token)).headers.get('content-length'), String(company.files.find((f) => f.id === FILE.welcomeTxt)?.size));
    assert.ok(emu.calls(DOWNLOAD_METHOD).length >= 3);
  });
});

describe('Slack emulator mutations', () => {
  let emu: SlackEmulator;
  let web: WebClient;
  before(async () => {
    emu = await SlackEmulator.start(company);
    web = client(emu);
  });
  after(() => emu.close());

  it('posts messages and thread replies after everything existing', async () => {
    const last = company.messages[CHANNEL.general]?.at(-1)?.ts ?? '';
    const ts = emu.postMessage(CHANNEL.general, USER.bob, 'new fact FRESH-MOOSE');
    assert.ok(tsMicros(ts) > tsMicros(last));
    const replyTs = emu.postMessage(CHANNEL.general, USER.alice, 'reply FRESH-MOOSE', { threadTs: ts });
    const newer = await web.conversations.history({ channel: CHANNEL.general, oldest: last });
    assert.equal(newer.messages?.length, 1);
    assert.equal(newer.messages?.[0]?.reply_count, 1);
    assert.equal(newer.messages?.[0]?.latest_reply, replyTs);
    emu.deleteMessage(CHANNEL.general, replyTs);
    const after = await web.conversations.history({ channel: CHANNEL.general, oldest: last });
    assert.equal(after.messages?.[0]?.reply_count, undefined);
  });

  it('uploads, shares and unshares files', async () => {
    const id = emu.uploadFile([CHANNEL.privatePlans], USER.alice, { name: 'memo.txt', mimetype: 'text/plain', content: Buffer.from('MEMO-LEMUR') });
    emu.shareFile(id, CHANNEL.general);
    let { file } = await web.files.info({ file: id });
    assert.deepEqual([file?.channels, file?.groups], [[CHANNEL.general], [CHANNEL.privatePlans]]);
    emu.unshareFile(FILE.roadmapPdf, CHANNEL.general);
    ({ file } = await web.files.info({ file: FILE.roadmapPdf }));
    assert.deepEqual([file?.channels, file?.groups], [[], [CHANNEL.privatePlans]]);
    const body = await (await download(await fileUrl(web, id), emu.token)).text();
    assert.equal(body, 'MEMO-LEMUR');
  });

  it('reflects membership, privacy, archival and deactivation', async () => {
    emu.removeMember(CHANNEL.privatePlans, USER.gina);
    assert.deepEqual((await web.conversations.members({ channel: CHANNEL.privatePlans })).members, [USER.alice, USER.astry]);
    emu.setPrivate(CHANNEL.engineering);
    emu.archive(CHANNEL.engineering);
    const eng = await web.conversations.info({ channel: CHANNEL.engineering });
    assert.equal(eng.channel?.is_private, true);
    assert.equal(eng.channel?.is_archived, true);
    emu.deactivateUser(USER.bob);
    assert.equal((await web.users.info({ user: USER.bob })).user?.deleted, true);
    emu.removeMember(CHANNEL.wasPublic, USER.astry);
    assert.equal(await platformError(web.conversations.history({ channel: CHANNEL.wasPublic })), 'channel_not_found');
    emu.removeMember(CHANNEL.general, USER.astry);
    assert.equal(await platformError(web.conversations.history({ channel: CHANNEL.general })), 'not_in_channel');
    assert.equal(company.channels.find((c) => c.id === CHANNEL.general)?.members.includes(USER.astry), true);
  });
});
