// Erasure benchmark: time to erase one person who owns N documents (each with C chunks, vectors and a
// vault blob) among M documents of others, with Q past queries (usage rows and audit entries sealed
// under their key), through the real Temporal workflow and a real worker in this process.
// Usage: node bench/erasure.ts [--docs 1000] [--chunks 4] [--others 1000] [--queries 200] [--batch 100] [--keep-db]
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { AuditLog } from '../audit/log.ts';
import { LocalEd25519Signer } from '../audit/signer.ts';
import type { SourceDocument } from '../connectors/types.ts';
import { env } from '../core/env.ts';
import { createConnection, ensureWorkspace } from '../db/connections.ts';
import { inTransaction } from '../db/pool.ts';
import { upsertIdentities } from '../db/principals.ts';
import { recordUsage } from '../db/usage.ts';
import { verifySignedBundle } from '../erasure/bundle.ts';
import { personalAuditFields } from '../erasure/personal.ts';
import { eraseSubject } from '../erasure/request.ts';
import { bundleOf } from '../erasure/result.ts';
import { storeDocument } from '../pipeline/store.ts';
import { HashEmbedder } from '../test/support/hash-embedder.ts';
import { LocalKeyFileProvider } from '../vault/key-provider.ts';
import { createErasureActivities } from '../workflows/erasure/activities.ts';
import { workflowBundle } from '../workflows/worker.ts';
import { openBenchDatabase } from './query/database.ts';

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '1000' },
    chunks: { type: 'string', default: '4' },
    others: { type: 'string', default: '1000' },
    queries: { type: 'string', default: '200' },
    batch: { type: 'string', default: '100' },
    'keep-db': { type: 'boolean', default: false },
  },
});

function count(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${name} must be a non-negative integer, got ${raw}`);
  return n;
}

const docs = count('docs', values.docs);
const chunksPerDoc = Math.max(1, count('chunks', values.chunks));
const others = count('others', values.others);
const queries = count('queries', values.queries);
const batchSize = Math.max(1, count('batch', values.batch));
const seconds = (ms: number): number => Math.round(ms) / 1000;

const config = env();
const db = await openBenchDatabase();
const dir = await mkdtemp(join(tmpdir(), 'astry-bench-erasure-'));
const keys = await LocalKeyFileProvider.open(join(dir, 'kek.key'));
const signer = await LocalEd25519Signer.open(join(dir, 'audit.pem'));
const audit = new AuditLog({ pool: db.app, spoolDir: join(dir, 'spool'), checkpointDir: join(dir, 'checkpoints'), signer });
const embedder = new HashEmbedder();

const workspaceId = await ensureWorkspace(db.app, 'bench');
const connection = await createConnection(db.app, keys, { workspaceId, name: 'slack', source: 'slack', config: { apiUrl: 'http://127.0.0.1:9/' }, token: 'xoxb-bench' });
const target = { workspaceId, connectionId: connection.id };
const person = (id: string, name: string) => ({ sourceUserId: id, displayName: name, email: `${name}@bench.test`, kind: 'member' as const, active: true, user: { kind: 'user' as const, key: `email:${name}@bench.test` } });
await upsertIdentities(db.app, workspaceId, connection.id, [person('U0SUBJECT', 'subject'), person('U0OTHER', 'other')]);
const { rows: ids } = await db.app.query<{ id: number; key: string }>(`SELECT id, key FROM principals WHERE kind = 'user'`);
const subjectId = ids.find((r) => r.key === 'email:subject@bench.test')?.id ?? 0;

/** Seeds one document; half of the subject's are authored, half only mention them. */
async function seed(i: number, mine: boolean): Promise<string> {
  const texts = Array.from({ length: chunksPerDoc }, (_, c) => `document ${i} chunk ${c} ${mine ? 'subject' : 'other'} words ${i % 97} ${c * 7}`);
  const vectors = await embedder.embed(texts);
  const doc: SourceDocument = {
    sourceId: `thread:C0BENCH${i % 50}:${i}`, containerId: `C0BENCH${i % 50}`, kind: 'slack_thread', title: `doc ${i}`, url: 'https://bench.slack.com',
    contentVersion: String(i), updatedAt: new Date(), acl: [], content: { type: 'text', text: texts.join('\n') },
    subjects: mine ? [{ sourceUserId: i % 2 === 0 ? 'U0SUBJECT' : 'U0OTHER', role: 'author' }, ...(i % 2 === 0 ? [] : [{ sourceUserId: 'U0SUBJECT', role: 'mentioned' as const }])] : [{ sourceUserId: 'U0OTHER', role: 'author' }],
  };
  return inTransaction(db.app, (client) =>
    storeDocument(client, keys, target, {
      doc, title: doc.title, text: texts.join('\n'), grants: [], aclHash: '',
      chunks: texts.map((text, ordinal) => ({ ordinal, text, tokenCount: 12, embedding: vectors[ordinal] ?? [] })),
    }),
  );
}

const seedStarted = performance.now();
const subjectDocs: string[] = [];
const workers = 4;
for (const [n, mine] of [[docs, true], [others, false]] as const) {
  let next = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (next < n) {
      const i = next++;
      const id = await seed(mine ? i : docs + i, mine);
      if (mine) subjectDocs.push(id);
    }
  }));
}
for (let i = 0; i < queries; i++) {
  const requestId = `bench-${i}`;
  await recordUsage(db.app, { workspaceId, principalId: subjectId, requestId, provider: 'extractive', model: 'v1', inputTokens: 10, outputTokens: 10, toolCalls: 1, usd: 0.001 });
  const personal = await personalAuditFields(db.app, keys, workspaceId, subjectId, { actor: `principal:${subjectId}`, questionSha256: 'x'.repeat(64), citations: [] });
  await audit.append({ workspaceId, type: 'query', ...personal, documentIds: subjectDocs.slice(i % Math.max(1, docs), (i % Math.max(1, docs)) + 3), outcome: 'answered', details: { requestId } });
}
await audit.drain();
const seedMs = performance.now() - seedStarted;

const taskQueue = `astry-bench-erasure-${process.pid}`;
const native = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
const worker = await Worker.create({
  connection: native, namespace: config.TEMPORAL_NAMESPACE, taskQueue, workflowBundle: await workflowBundle(),
  activities: createErasureActivities({ pool: db.app, keys, erasure: { audit, signer } }),
});
const running = worker.run();
const temporal = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
const client = new Client({ connection: temporal, namespace: config.TEMPORAL_NAMESPACE });

const load = loadavg()[0] ?? 0;
const started = performance.now();
const { result } = await eraseSubject({ pool: db.app, keys, client, taskQueue }, { workspaceId, subject: 'subject@bench.test', requestedBy: 'bench' }, { batchSize });
const eraseMs = performance.now() - started;
const verifyStarted = performance.now();
const verdict = verifySignedBundle(bundleOf(result));
const verifyMs = performance.now() - verifyStarted;
if (!verdict.ok) throw new Error(`bundle does not verify: ${verdict.reason}`);
const artifacts = ['documents', 'chunks', 'embeddings', 'vaultBlobs', 'documentSubjects', 'documentGrants', 'usageLedger', 'auditEntriesShredded', 'subjectKeys']
  .reduce((n, k) => n + (result.erased[k] ?? 0), 0);

worker.shutdown();
await running;
await native.close();
await temporal.close();
await audit.close();
if (values['keep-db']) await db.close();
else await db.drop();
await rm(dir, { recursive: true, force: true });

console.log(
  `erased ${result.erased.documents} documents (${result.erased.chunks} chunks + vectors, ${result.erased.vaultBlobs} blobs), ` +
    `${result.erased.usageLedger} ledger rows, ${result.erased.auditEntriesShredded} audit entries shredded — ${artifacts} artifacts in ${seconds(eraseMs)} s ` +
    `(${Math.round(artifacts / (eraseMs / 1000))} artifacts/s; ${others} other documents untouched; seeding took ${seconds(seedMs)} s; bundle verified in ${seconds(verifyMs)} s)`,
);
console.log(JSON.stringify({
  docs, chunksPerDoc, others, queries, batchSize, erased: result.erased, artifacts,
  eraseSeconds: seconds(eraseMs), artifactsPerSecond: Math.round(artifacts / (eraseMs / 1000)), verifySeconds: seconds(verifyMs),
  host: { cpus: cpus().length, load1AtStart: Math.round(load * 100) / 100 },
}));
