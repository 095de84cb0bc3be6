import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { AuditLog } from '../audit/log.ts';
import { LocalEd25519Signer } from '../audit/checkpoint.ts';
import { createConnection, ensureWorkspace } from '../db/connections.ts';
import { inTransaction } from '../db/pool.ts';
import { ensurePrincipals } from '../db/principals.ts';
import { mulberry32 } from '../fixtures/slack/prng.ts';
import { ExtractiveProvider } from '../models/extractive.ts';
import { storeDocument } from '../pipeline/store.ts';
import { LocalKeyFileProvider } from '../vault/key-provider.ts';
import { answerQuestion, type AskDeps } from '../worker/ask.ts';
import { claimSandboxRoot } from '../worker/sandbox-root.ts';
import { freshDatabase, type TestDatabase } from './support/database.ts';
import { HashEmbedder } from './support/hash-embedder.ts';

const WORDS = ['budget', 'roadmap', 'hiring', 'launch', 'security', 'pricing', 'merger', 'salary', 'outage', 'design', 'audit', 'travel'];

interface GeneratedCompany {
  users: { key: string; active: boolean }[];
  groups: string[];
  /** member key -> group keys it belongs to (users and groups can be members; cycles allowed). */
  memberOf: Map<string, string[]>;
  docs: { sourceId: string; text: string; grants: string[] }[];
}

/** A random company: users (some inactive), nested groups with cycles, documents granted to random principals. */
function generate(seed: number): GeneratedCompany {
  const rng = mulberry32(seed);
  const users = Array.from({ length: rng.int(2, 7) }, (_, i) => ({ key: `user:u${i}`, active: rng.chance(0.85) }));
  const groups = Array.from({ length: rng.int(1, 5) }, (_, i) => `group:g${i}`);
  const memberOf = new Map<string, string[]>();
  for (const member of [...users.map((u) => u.key), ...groups]) {
    memberOf.set(member, groups.filter((g) => g !== member && rng.chance(0.3)));
  }
  const principals = [...users.map((u) => u.key), ...groups];
  const docs = Array.from({ length: rng.int(3, 14) }, (_, i) => ({
    sourceId: `doc-${i}`,
    text: Array.from({ length: 12 }, () => rng.pick(WORDS)).join(' ') + ` fact number ${i}.`,
    grants: principals.filter(() => rng.chance(0.2)),
  }));
  return { users, groups, memberOf, docs };
}

/** The oracle: principals reachable from the user through memberships (BFS, independent of SQL). */
function closure(company: GeneratedCompany, userKey: string): Set<string> {
  const seen = new Set([userKey]);
  const queue = [userKey];
  while (queue.length > 0) {
    for (const g of company.memberOf.get(queue.shift() ?? '') ?? []) {
      if (!seen.has(g)) {
        seen.add(g);
        queue.push(g);
      }
    }
  }
  return seen;
}

const ref = (key: string) => {
  const [kind, name] = key.split(':') as ['user' | 'group', string];
  return { kind, key: name };
};

describe('authorized set: property test against an independent oracle', () => {
  let db: TestDatabase;
  let deps: AskDeps;
  let keys: LocalKeyFileProvider;
  before(async () => {
    db = await freshDatabase();
    const dir = await mkdtemp(join(tmpdir(), 'astry-prop-'));
    keys = await LocalKeyFileProvider.open(join(dir, 'kek'));
    const signer = await LocalEd25519Signer.open(join(dir, 'audit.pem'));
    const audit = new AuditLog({ pool: db.pool, spoolDir: join(dir, 'spool'), checkpointDir: join(dir, 'checkpoints'), signer });
    deps = {
      pool: db.pool, keys, embedder: new HashEmbedder(), provider: new ExtractiveProvider(), audit,
      sandboxRoot: (await claimSandboxRoot(join(dir, 'sandboxes'))).root,
      budget: { maxUsd: 0, maxTokens: 10_000, maxToolCalls: 12, maxWallMs: 20_000 },
      maxUsdPerUserPerDay: 1, search: { k: 6 },
    };
  });
  after(async () => {
    await deps.audit.close();
    await db.drop();
  });

  test('no materialized file and no citation is ever outside the asker’s authorized set', async () => {
    let cases = 0;
    let materializedTotal = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 99 }), fc.array(fc.constantFrom(...WORDS), { minLength: 1, maxLength: 3 }), async (seed, askerPick, words) => {
        cases++;
        const company = generate(seed);
        const workspaceId = await ensureWorkspace(db.pool, `prop-${cases}-${seed}`);
        const connection = await createConnection(db.pool, keys, { workspaceId, name: 'c', source: 'slack', config: { apiUrl: 'http://127.0.0.1:1/' }, token: 'x' });
        const all = [...company.users.map((u) => u.key), ...company.groups];
        const ids = await ensurePrincipals(db.pool, workspaceId, all.map(ref));
        const idOf = (key: string) => ids.get(`${ref(key).kind}:${ref(key).key}`) ?? -1;
        for (const u of company.users.filter((x) => !x.active)) await db.pool.query(`UPDATE principals SET active = false WHERE id = $1`, [idOf(u.key)]);
        for (const [member, groups] of company.memberOf) {
          for (const g of groups) {
            await db.pool.query(`INSERT INTO memberships (workspace_id, group_id, member_id, connection_id) VALUES ($1, $2, $3, $4)`, [workspaceId, idOf(g), idOf(member), connection.id]);
          }
        }
        const documentIdOf = new Map<string, string>();
        for (const d of company.docs) {
          const [embedding] = await deps.embedder.embed([d.text]);
          const id = await inTransaction(db.pool, (tx) =>
            storeDocument(tx, keys, { workspaceId, connectionId: connection.id }, {
              doc: { sourceId: d.sourceId, containerId: 'c', kind: 'slack_day', title: d.sourceId, url: '', contentVersion: d.text, updatedAt: new Date(0), acl: d.grants.map(ref), content: { type: 'text', text: d.text } },
              title: d.sourceId, text: d.text,
              chunks: [{ ordinal: 0, text: d.text, tokenCount: 20, embedding: embedding ?? [] }],
              grants: d.grants.map((g) => ({ principalId: idOf(g) })), aclHash: d.grants.join(','),
            }),
          );
          documentIdOf.set(id, d.sourceId);
        }
        const asker = company.users[askerPick % company.users.length];
        assert.ok(asker);
        const reach = closure(company, asker.key);
        const authorized = new Set(company.docs.filter((d) => d.grants.some((g) => reach.has(g))).map((d) => d.sourceId));
        let result;
        try {
          result = await answerQuestion(deps, { workspaceId, principalId: idOf(asker.key), question: `what about ${words.join(' ')}?` });
        } catch (err) {
          assert.equal(asker.active, false, `only inactive askers are refused: ${String(err)}`);
          return;
        }
        assert.ok(asker.active, 'an inactive asker must be refused');
        for (const id of result.materialized) assert.ok(authorized.has(documentIdOf.get(id) ?? ''), `leak: materialized ${documentIdOf.get(id)}`);
        for (const c of result.citations) assert.ok(authorized.has(documentIdOf.get(c.documentId) ?? ''), `leak: cited ${documentIdOf.get(c.documentId)}`);
        materializedTotal += result.materialized.length;
      }),
      { numRuns: Number(process.env.ASTRY_PROPERTY_RUNS ?? 60) },
    );
    console.log(`authorized-set property: ${cases} cases, ${materializedTotal} files materialized, 0 leaks`);
    assert.ok(materializedTotal > 0, 'the property exercised real materialization');
  });
});
