import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import { signCheckpoint } from '../audit/checkpoint.ts';
import { keyIdOf, type CheckpointSigner } from '../audit/signer.ts';
import { buildDocuments } from '../connectors/slack/documents.ts';
import { MessageSchema, type SlackChannel } from '../connectors/slack/schemas.ts';
import { signManifest, verifySignedBundle } from '../erasure/bundle.ts';
import { buildManifest } from '../erasure/manifest.ts';
import type { ErasureRecord } from '../erasure/records.ts';

function testSigner(): CheckpointSigner {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId: keyIdOf(publicKey), publicKey, sign: (data) => Promise.resolve(sign(null, data, privateKey)) };
}

describe('Slack documents leave erased people out', () => {
  const channel: SlackChannel = { id: 'C1', name: 'eng', isPrivate: false, isArchived: false, isExtShared: false, isMember: true, isDirect: false };
  const team = { teamId: 'T1', domain: 'acme', botUserId: 'U0BOT' };
  const names = new Map([['U0BOB', 'bob'], ['U0SAM', 'sam']]);
  const m = (ts: string, user: string, text: string, extra: Record<string, unknown> = {}) => MessageSchema.parse({ ts, user, text, ...extra });
  const parent = m('1790900000.000100', 'U0BOB', 'the freeze starts Monday', { reply_count: 2, thread_ts: '1790900000.000100' });
  const replies = [parent, m('1790900060.000100', 'U0SAM', 'noted <@U0BOB>', { thread_ts: parent.ts }), m('1790900120.000100', 'U0BOB', 'thanks sam', { thread_ts: parent.ts })];
  const loose = [m('1790910000.000100', 'U0SAM', 'ask <@U0BOB|bob> about billing'), m('1790910100.000100', 'U0BOB', 'billing is green')];

  test('without rules, documents name their authors and mentioned people', () => {
    const docs = buildDocuments(channel, [parent, ...loose], new Map([[parent.ts, replies]]), { team, names });
    const thread = docs.find((d) => d.kind === 'slack_thread');
    assert.deepEqual(thread?.subjects, [{ sourceUserId: 'U0BOB', role: 'author' }, { sourceUserId: 'U0SAM', role: 'author' }, { sourceUserId: 'U0BOB', role: 'mentioned' }]);
  });

  test('with bob suppressed, his messages are gone, mentions of him redacted, and he is no subject', () => {
    const ctx = { team, names, suppressed: (id: string) => id === 'U0BOB' };
    const docs = buildDocuments(channel, [parent, ...loose], new Map([[parent.ts, replies]]), ctx);
    const text = docs.map((d) => `${d.title}\n${d.content.type === 'text' ? d.content.text : ''}`).join('\n');
    assert.ok(!text.includes('freeze starts') && !text.includes('thanks sam') && !text.includes('billing is green'), text);
    assert.ok(text.includes('noted @[erased]') && text.includes('ask @[erased] about billing'), text);
    assert.ok(!text.includes('bob'), text);
    assert.ok(docs.every((d) => (d.subjects ?? []).every((s) => s.sourceUserId !== 'U0BOB')));
  });
});

describe('the signed manifest', () => {
  async function bundle() {
    const signer = testSigner();
    const checkpoint = await signCheckpoint(signer, { seq: 12, hash: Buffer.alloc(32, 7) });
    const record: ErasureRecord = {
      id: 'erasure-1-abc', workspaceId: '1', subject: 'ab'.repeat(32), requestedBy: 'cli:dpo', reason: 'DPO-1',
      requestedAt: new Date('2026-11-01T10:00:00Z'), status: 'running', startedAt: new Date('2026-11-01T10:00:01Z'), completedAt: null,
      footprint: { documents: 3 }, counts: { documents: 3, chunks: 9, suppressionRules: 2, auditEntriesShredded: 4 },
      notes: { rescanScopes: ['1/channel:C1'], usageUsd: 0.25 }, destroyedKeyIds: ['sk_1'],
      audit: { entry: { seq: 11, eventId: '6f1c2b4e-8a1d-5c3e-9f00-112233445566' }, checkpoint }, bundle: null,
    };
    return { signer, signed: await signManifest(signer, buildManifest(record, new Date('2026-11-01T10:00:05Z'), signer.keyId)) };
  }

  test('verifies, names only the pseudonym, and says what was kept', async () => {
    const { signer, signed } = await bundle();
    const verdict = verifySignedBundle(signed, { publicKey: signer.publicKey });
    assert.ok(verdict.ok, JSON.stringify(verdict));
    assert.equal(verdict.manifest.subject.pseudonym, `hmac-sha256:${'ab'.repeat(32)}`);
    assert.deepEqual(verdict.manifest.erased, { auditEntriesShredded: 4, chunks: 9, documents: 3 });
    assert.equal(verdict.manifest.suppression.rules, 2);
    assert.ok(verdict.manifest.retained.length >= 5);
  });

  test('flipping any one byte of the manifest or the signature fails verification', async () => {
    const { signer, signed } = await bundle();
    for (const part of ['manifest', 'signature'] as const) {
      for (let i = 0; i < signed[part].length; i++) {
        const copy = Buffer.from(signed[part]);
        copy[i] = (copy[i] ?? 0) ^ 0x01;
        const verdict = verifySignedBundle({ ...signed, [part]: copy }, { publicKey: signer.publicKey });
        assert.equal(verdict.ok, false, `${part} byte ${i}`);
      }
    }
  });

  test('a bundle signed by another key fails against the expected key', async () => {
    const { signed } = await bundle();
    const other = testSigner();
    const verdict = verifySignedBundle(signed, { publicKey: other.publicKey });
    assert.equal(verdict.ok, false);
    assert.equal(verifySignedBundle(signed).ok, true, 'self-consistent without an expected key');
  });

  test('a checkpoint that does not cover the erasure entry is refused', async () => {
    const { signer } = await bundle();
    const checkpoint = await signCheckpoint(signer, { seq: 5, hash: Buffer.alloc(32, 7) });
    const manifest = JSON.parse((await bundle()).signed.manifest.toString('utf8'));
    manifest.audit.checkpoint = checkpoint;
    manifest.signer.keyId = signer.keyId;
    const resigned = await signManifest(signer, manifest);
    const verdict = verifySignedBundle(resigned, { publicKey: signer.publicKey });
    assert.equal(verdict.ok, false);
    assert.match(verdict.ok ? '' : verdict.reason, /does not cover/);
  });
});
