import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { verifyAudit } from '../audit/verify.ts';
import { upsertDirectoryUsers } from '../db/directory.ts';
import type { BotPost } from '../fixtures/slack/state.ts';
import { CHANNEL, CODEWORD, FILE_CODEWORD, USER } from '../fixtures/slack/ids.ts';
import { conversationAudience } from '../slackbot/audience.ts';
import { resolveSlackAsker } from '../slackbot/asker.ts';
import { PRIVATE_ANSWER_ACTION } from '../slackbot/jobs.ts';
import { RateLimiter } from '../slackbot/rate-limit.ts';
import { principalOfSourceUser, readableSourceIds } from './support/access.ts';
import { assertNamesNoOne, auditEntries, openSealedRefusal, pseudonymActorOf } from './support/audit-privacy.ts';
import { startHarness, type SyncHarness } from './support/harness.ts';
import { startQueryStack, type QueryStack } from './support/query-stack.ts';
import { startSlackAppStack, type SlackAppStack } from './support/slack-app.ts';

/** All text a post shows: its fallback and every mrkdwn block. */
function shown(post: BotPost): string {
  return JSON.stringify(post.blocks) + post.text;
}

/** Source links (`<url|title>`) in a post. */
function linkedUrls(post: BotPost): string[] {
  return [...shown(post).matchAll(/<(https?:\/\/[^|>]+)\|/g)].map((m) => m[1] ?? '');
}

const inThread = (channel: string, threadTs: string, kind: BotPost['kind'] = 'message') => (p: BotPost) =>
  p.kind === kind && p.channel === channel && p.threadTs === threadTs;

describe('Ask Astry in Slack (emulated Slack -> signed events -> API -> queue -> bot -> query worker -> posts)', () => {
  let h: SyncHarness;
  let q: QueryStack;
  let s: SlackAppStack;

  /** Source ids of the documents behind a post's source links. */
  async function citedSourceIds(post: BotPost): Promise<string[]> {
    const urls = linkedUrls(post);
    const { rows } = await h.db.pool.query<{ source_id: string }>(
      `SELECT source_id FROM documents WHERE connection_id = $1 AND url = ANY($2::text[])`,
      [h.connectionId, urls],
    );
    return rows.map((r) => r.source_id);
  }

  /** Asserts everyone in `slackUserIds` can read every source cited by `post`. */
  async function assertReadableByAll(post: BotPost, slackUserIds: string[]): Promise<void> {
    const cited = await citedSourceIds(post);
    for (const user of slackUserIds) {
      const readable = await readableSourceIds(h.db.pool, h.connectionId, user);
      for (const id of cited) assert.ok(readable.has(id), `${user} may read cited ${id}`);
    }
  }

  before(async () => {
    h = await startHarness();
    await h.sync();
    q = await startQueryStack(h);
    s = await startSlackAppStack(h, q);
  });
  after(async () => {
    await s?.close();
    await q?.close();
    await h?.close();
  });

  test('a question in a DM is answered in its thread from the asker\'s authorized set, with sources and spend', async () => {
    const done = s.jobsFinished(1);
    const sent = await s.app.directMessage(USER.alice, `What is the plan mentioned with ${CODEWORD.privatePlans}?`);
    assert.equal(sent.delivery.acked, true);
    assert.ok((sent.delivery.attempts[0]?.ms ?? Infinity) < 1000, 'acknowledged well within 3 s');
    assert.deepEqual((await done).map((f) => f.outcome), ['answered']);
    const answer = await h.emulator.waitForPost(inThread(sent.channel, sent.ts));
    assert.ok(shown(answer).includes(CODEWORD.privatePlans), 'the private channel alice is in is used');
    assert.match(shown(answer), /Sources:/);
    assert.match(shown(answer), /Spent \$0\.0000 \(extractive, no language model\)/);
    assert.ok(linkedUrls(answer).length > 0, 'sources link back to Slack');
    assert.match(shown(answer), /\[1\]/, 'citations are numbered, not sandbox file names');
    assert.doesNotMatch(shown(answer), /doc-\d+\./);
    const readable = await readableSourceIds(h.db.pool, h.connectionId, USER.alice);
    for (const id of await citedSourceIds(answer)) assert.ok(readable.has(id));
    // Slack echoes the bot's own DM post back as message.im; answering it would loop.
    await s.app.settle();
    assert.equal(h.emulator.posts.filter((p) => p.channel === sent.channel && p.kind === 'message').length, 1);
  });

  test('the same question in a channel with a member who lacks access leaves the restricted sources out and offers the rest privately', async () => {
    const done = s.jobsFinished(1);
    const sent = await s.app.mention(CHANNEL.engineering, USER.alice, `What is the plan mentioned with ${CODEWORD.privatePlans}?`);
    assert.deepEqual((await done).map((f) => f.outcome), ['answered']);
    const answer = await h.emulator.waitForPost(inThread(CHANNEL.engineering, sent.ts));
    assert.ok(!shown(answer).includes(CODEWORD.privatePlans), 'nothing from #private-plans in the channel');
    assert.match(shown(answer), /everyone in this conversation can read/);
    await assertReadableByAll(answer, [USER.alice, USER.bob, USER.sam, USER.gina]);

    const offer = await h.emulator.waitForPost(inThread(CHANNEL.engineering, sent.ts, 'ephemeral'));
    assert.equal(offer.user, USER.alice, 'only the asker is told');
    assert.match(offer.text, /leaves out \d+ sources? you can read/);
    assert.ok(!shown(offer).includes(CODEWORD.privatePlans), 'the offer names nothing');

    const privately = s.jobsFinished(1);
    const click = await s.app.clickButton(USER.alice, offer, PRIVATE_ANSWER_ACTION);
    assert.equal(click.status, 200);
    assert.deepEqual((await privately).map((f) => f.outcome), ['answered_private']);
    const dm = await h.emulator.waitForPost((p) => p.kind === 'message' && p.channel === `D${USER.alice.slice(1)}` && p.text.includes(`<#${CHANNEL.engineering}>`));
    assert.ok(shown(dm).includes(CODEWORD.privatePlans), 'the full answer, by DM');
    // The same button again (a double click) is acknowledged and gives no second private answer.
    assert.equal((await s.app.clickButton(USER.alice, offer, PRIVATE_ANSWER_ACTION)).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(h.emulator.posts.filter((p) => p.channel === dm.channel && p.text.includes(`<#${CHANNEL.engineering}>`)).length, 1);
  });

  test('an expired offer is explained, privately', async () => {
    const stale: BotPost = {
      kind: 'ephemeral', channel: CHANNEL.general, ts: '1790900000.000100', user: USER.bob, text: 'offer', at: Date.now(),
      blocks: [{ type: 'actions', block_id: 'b', elements: [{ type: 'button', action_id: PRIVATE_ANSWER_ACTION, value: 'A'.repeat(22), text: { type: 'plain_text', text: 'x' } }] }],
    };
    const done = s.jobsFinished(1);
    await s.app.clickButton(USER.bob, stale, PRIVATE_ANSWER_ACTION);
    assert.deepEqual((await done).map((f) => f.outcome), ['offer_expired']);
    const notice = await h.emulator.waitForPost((p) => p.kind === 'ephemeral' && p.user === USER.bob && /expired/.test(p.text));
    assert.equal(notice.channel, CHANNEL.general);
  });

  test('in a channel whose members can all read the sources, they are used and nothing is offered', async () => {
    const done = s.jobsFinished(1);
    const sent = await s.app.mention(CHANNEL.privatePlans, USER.alice, `What is the plan mentioned with ${CODEWORD.privatePlans}?`);
    await done;
    const answer = await h.emulator.waitForPost(inThread(CHANNEL.privatePlans, sent.ts));
    assert.ok(shown(answer).includes(CODEWORD.privatePlans));
    await assertReadableByAll(answer, [USER.alice, USER.gina]);
    assert.equal(h.emulator.posts.filter(inThread(CHANNEL.privatePlans, sent.ts, 'ephemeral')).length, 0);
  });

  test('a Slack Connect external in the channel counts as a reader with her own principal', async () => {
    const shared = s.jobsFinished(1);
    const own = await s.app.mention(CHANNEL.sharedAcme, USER.alice, `What was said about ${CODEWORD.sharedAcme}?`);
    await shared;
    const ownAnswer = await h.emulator.waitForPost(inThread(CHANNEL.sharedAcme, own.ts));
    assert.ok(shown(ownAnswer).includes(CODEWORD.sharedAcme), 'xena reads #shared-acme, so it is used');
    await assertReadableByAll(ownAnswer, [USER.alice, USER.xena]);

    const restricted = s.jobsFinished(1);
    const other = await s.app.mention(CHANNEL.sharedAcme, USER.alice, `What does the spec say about ${FILE_CODEWORD.specPdf}?`);
    await restricted;
    const otherAnswer = await h.emulator.waitForPost(inThread(CHANNEL.sharedAcme, other.ts));
    assert.ok(!shown(otherAnswer).includes(FILE_CODEWORD.specPdf), 'xena cannot read the spec: not shown to her');
    await assertReadableByAll(otherAnswer, [USER.alice, USER.xena]);
  });

  test('a member Astry has no identity for yet makes the channel answer impossible, not unsafe', async () => {
    const alice = await principalOfSourceUser(h.db.pool, h.connectionId, USER.alice);
    assert.ok(alice !== null);
    const slack = {
      members: () => Promise.resolve([USER.alice, USER.astry, USER.dave, 'U0NEWHIRE']),
      resolveExternal: (id: string) => Promise.resolve(
        id === 'U0NEWHIRE'
          ? { sourceUserId: id, displayName: 'New', email: 'new@ex.com', kind: 'member' as const, active: true, user: { kind: 'user' as const, key: 'email:new@ex.com' } }
          : null,
      ),
    };
    const audience = await conversationAudience(h.db.pool, slack, { workspaceId: h.workspaceId, connectionId: h.connectionId }, CHANNEL.general, alice);
    assert.deepEqual(audience.unknown, ['U0NEWHIRE']);
    assert.deepEqual(audience.principalIds, [alice], 'the bot and deactivated dave are not readers');
  });

  test('a follow-up in the thread keeps the conversation\'s context', async () => {
    const first = s.jobsFinished(1);
    const sent = await s.app.directMessage(USER.alice, `What does the spec say about ${FILE_CODEWORD.specPdf}?`);
    await first;
    await h.emulator.waitForPost(inThread(sent.channel, sent.ts));
    const followUp = s.jobsFinished(1);
    await s.app.directMessage(USER.alice, 'and what else does it mention?', { threadTs: sent.ts });
    await followUp;
    const posts = h.emulator.posts.filter(inThread(sent.channel, sent.ts));
    assert.equal(posts.length, 2);
    assert.ok(shown(posts[1] as BotPost).includes(FILE_CODEWORD.specPdf), 'the follow-up is asked with the first question');
    // The same words outside the thread have no context, and do not find it.
    const alone = s.jobsFinished(1);
    const fresh = await s.app.directMessage(USER.alice, 'and what else does it mention?');
    await alone;
    const freshAnswer = await h.emulator.waitForPost(inThread(fresh.channel, fresh.ts));
    assert.ok(!shown(freshAnswer).includes(FILE_CODEWORD.specPdf));
    const { rows } = await h.db.pool.query<{ sealed: Buffer }>(`SELECT sealed FROM slack_turns WHERE channel_id = $1 AND thread_ts = $2`, [sent.channel, sent.ts]);
    assert.equal(rows.length, 2);
    for (const r of rows) assert.ok(!r.sealed.toString('latin1').includes(FILE_CODEWORD.specPdf), 'thread history is sealed at rest');
  });

  test('a single-channel guest gets answers only from what the guest may read', async () => {
    const done = s.jobsFinished(1);
    const sent = await s.app.directMessage(USER.sam, `Tell me about ${CODEWORD.general} and ${CODEWORD.engineering}`);
    assert.deepEqual((await done).map((f) => f.outcome), ['answered']);
    const answer = await h.emulator.waitForPost(inThread(sent.channel, sent.ts));
    assert.ok(!shown(answer).includes(CODEWORD.general), 'sam is not in #general');
    const readable = await readableSourceIds(h.db.pool, h.connectionId, USER.sam);
    for (const id of await citedSourceIds(answer)) assert.ok(readable.has(id), `${id} is sam's to read`);
  });

  test('unlinked and deactivated askers get one polite ephemeral refusal and nothing else, and are audited', async () => {
    const postsBefore = h.emulator.posts.length;
    const done = s.jobsFinished(2);
    const xena = await s.app.mention(CHANNEL.sharedAcme, USER.xena, `What was said about ${CODEWORD.sharedAcme}?`);
    const dave = await s.app.directMessage(USER.dave, 'anything?');
    assert.deepEqual((await done).map((f) => f.outcome).sort(), ['refused_deactivated', 'refused_unlinked']);
    const posted = h.emulator.posts.slice(postsBefore);
    assert.equal(posted.length, 2);
    assert.ok(posted.every((p) => p.kind === 'ephemeral'), 'refusals are ephemeral');
    assert.equal(posted.find((p) => p.channel === xena.channel)?.user, USER.xena);
    assert.equal(posted.find((p) => p.channel === dave.channel)?.user, USER.dave);
    assert.equal(posted[0]?.text, posted[1]?.text, 'one sentence for both: no oracle');
    assert.match(posted[0]?.text ?? '', /can't answer questions for your account/);

    // Deactivated in the directory while still active in Slack: refused at once, no sync needed.
    await upsertDirectoryUsers(h.db.pool, h.workspaceId, [{ email: 'bob@ex.com', displayName: 'Bob Nguyen', active: false }]);
    try {
      const refused = s.jobsFinished(1);
      await s.app.directMessage(USER.bob, 'What is on the roadmap?');
      assert.deepEqual((await refused).map((f) => f.outcome), ['refused_deactivated']);
    } finally {
      await upsertDirectoryUsers(h.db.pool, h.workspaceId, [{ email: 'bob@ex.com', displayName: 'Bob Nguyen', active: true }]);
    }
    const notSynced = await resolveSlackAsker(h.db.pool, { workspaceId: h.workspaceId, connectionId: h.connectionId }, 'U0NOTSYNCED');
    assert.equal(notSynced.ok, false);

    await q.deps.audit.drain();
    const refusals = await auditEntries(h.db.pool, `entry->>'outcome' = 'refused_forbidden' AND entry->'details'->>'via' = 'slack'`);
    const reasons = refusals.map((e) => e.details?.reason).sort();
    assert.deepEqual(reasons, ['deactivated', 'deactivated', 'unlinked']);

    // Nobody is named in clear. Deactivated company users: sealed under their own subject key, which
    // their erasure destroys. Xena (no company user): a keyed pseudonym an admin can recompute.
    const principals = new Map<string, number>();
    for (const user of [USER.xena, USER.dave, USER.bob]) principals.set(user, (await principalOfSourceUser(h.db.pool, h.connectionId, user)) ?? -1);
    const slackIds = [USER.xena, USER.dave, USER.bob];
    for (const entry of refusals) assertNamesNoOne(entry, [...slackIds, 'xena@', 'dave@ex.com', 'bob@ex.com'], [...principals.values()]);
    const unlinked = refusals.filter((e) => e.details?.reason === 'unlinked');
    assert.deepEqual(unlinked.map((e) => [e.actor, e.personal]), [[await pseudonymActorOf(h.db.pool, q.deps.keys, h.workspaceId, `slack:${USER.xena}`), undefined]]);
    // Dave is deactivated in Slack, bob was in the directory: the clear detail says which, not who.
    const ownerOf = new Map<unknown, string>([['deactivated in Slack', USER.dave], ['deactivated in the directory', USER.bob]]);
    const opened = [];
    for (const entry of refusals.filter((e) => e.details?.reason === 'deactivated')) {
      const owner = ownerOf.get(entry.details?.detail);
      assert.ok(owner, JSON.stringify(entry.details));
      const fields = await openSealedRefusal(h.db.pool, q.deps.keys, entry, principals.get(owner) ?? -1);
      assert.equal(fields.slackUserId, owner);
      assert.equal(fields.principalId, principals.get(owner));
      opened.push(owner);
    }
    assert.deepEqual(opened.sort(), [USER.bob, USER.dave].sort());
    const chain = await verifyAudit(h.db.pool, { publicKey: q.signer.publicKey, checkpointDir: q.checkpointDir });
    assert.equal(chain.ok, true, JSON.stringify(chain));
  });

  test('Slack\'s retries of one event produce one answer', async () => {
    const done = s.jobsFinished(1);
    const sent = await s.app.mention(CHANNEL.general, USER.bob, `What is going on with ${CODEWORD.general}?`, { lostAcks: 2 });
    assert.equal(sent.delivery.attempts.length, 3, 'Slack retried twice');
    assert.deepEqual(sent.delivery.attempts.map((a) => a.status), [200, 200, 200]);
    assert.match(sent.delivery.attempts[2]?.body ?? '', /duplicate/);
    await done;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(h.emulator.posts.filter(inThread(CHANNEL.general, sent.ts)).length, 1, 'one answer');
  });

  test('a replayed event (same signed bytes, within the window) is acknowledged and dropped', async () => {
    const done = s.jobsFinished(1);
    const sent = await s.app.directMessage(USER.gina, `What is the plan mentioned with ${CODEWORD.privatePlans}?`);
    await done;
    const event = { type: 'message', channel: sent.channel, user: USER.gina, text: 'replayed', ts: sent.ts, event_ts: sent.ts, channel_type: 'im' };
    const body = JSON.stringify(s.app.envelope(event, sent.eventId));
    const replay = await s.app.sendRaw(body);
    assert.equal(replay.status, 200);
    assert.match(replay.body, /duplicate/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(h.emulator.posts.filter(inThread(sent.channel, sent.ts)).length, 1);
  });

  test('per-user rate limits: one notice per window, and the question is not answered', async () => {
    const saved = s.deps.rateLimiter;
    s.deps.rateLimiter = new RateLimiter(s.redis, { keyPrefix: `${s.keyPrefix}:strict`, limit: 1, windowSeconds: 60 });
    try {
      const one = s.jobsFinished(1);
      const first = await s.app.directMessage(USER.bob, `What is going on with ${CODEWORD.general}?`);
      assert.deepEqual((await one).map((f) => f.outcome), ['answered']);
      const two = s.jobsFinished(2);
      const second = await s.app.directMessage(USER.bob, 'and again?');
      const third = await s.app.directMessage(USER.bob, 'and again!');
      assert.deepEqual((await two).map((f) => f.outcome), ['refused_rate_limited', 'refused_rate_limited']);
      assert.equal(h.emulator.posts.filter(inThread(first.channel, first.ts)).length, 1);
      const notices = h.emulator.posts.filter((p) => p.kind === 'ephemeral' && (p.threadTs === second.ts || p.threadTs === third.ts));
      assert.equal(notices.length, 1, 'told once');
      assert.match(notices[0]?.text ?? '', /try again in about \d+ seconds/);

      await q.deps.audit.drain();
      const limited = await auditEntries(h.db.pool, `entry->>'outcome' = 'refused_rate_limited' AND entry->'details'->>'via' = 'slack'`);
      assert.equal(limited.length, 2);
      const bob = (await principalOfSourceUser(h.db.pool, h.connectionId, USER.bob)) ?? -1;
      for (const entry of limited) {
        assertNamesNoOne(entry, [USER.bob, 'bob@ex.com'], [bob]);
        const fields = await openSealedRefusal(h.db.pool, q.deps.keys, entry, bob);
        assert.deepEqual(fields, { actor: `principal:${bob}`, slackUserId: USER.bob });
      }
    } finally {
      s.deps.rateLimiter = saved;
    }
  });

  test('an exhausted daily budget is explained to the asker', async () => {
    const bob = await principalOfSourceUser(h.db.pool, h.connectionId, USER.bob);
    await h.db.pool.query(
      `INSERT INTO usage_ledger (workspace_id, principal_id, request_id, provider, model, input_tokens, output_tokens, tool_calls, usd)
       VALUES ($1, $2, 'test-budget', 'test', 'test', 0, 0, 0, 5)`,
      [h.workspaceId, bob],
    );
    try {
      const done = s.jobsFinished(1);
      const sent = await s.app.directMessage(USER.bob, `What is going on with ${CODEWORD.general}?`);
      assert.deepEqual((await done).map((f) => f.outcome), ['refused_budget']);
      const notice = await h.emulator.waitForPost(inThread(sent.channel, sent.ts, 'ephemeral'));
      assert.match(notice.text, /question budget \(daily budget of \$1\.00 reached/);
      assert.equal(h.emulator.posts.filter(inThread(sent.channel, sent.ts)).length, 0);
    } finally {
      await h.db.pool.query(`DELETE FROM usage_ledger WHERE request_id = 'test-budget'`);
    }
  });

  test('a mention with no question gets help, not an answer', async () => {
    const done = s.jobsFinished(1);
    const sent = await s.app.mention(CHANNEL.general, USER.bob, '   ');
    assert.deepEqual((await done).map((f) => f.outcome), ['help']);
    const help = await h.emulator.waitForPost(inThread(CHANNEL.general, sent.ts, 'ephemeral'));
    assert.match(help.text, /Ask me a question/);
  });
});
