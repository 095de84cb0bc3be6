// Fast seeding of the synthetic company: documents, grants, sealed blobs and sealed chunks written in
// batches with unnest (storeDocument's layout and envelope, not its one-document-per-round-trip
// path), then the GIN and HNSW indexes built once over the loaded table, as the migration defines them.
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { createConnection, ensureWorkspace } from '../../db/connections.ts';
import { upsertDirectoryUsers } from '../../db/directory.ts';
import { ensurePrincipals, principalKey, principalSet } from '../../db/principals.ts';
import { SEEDED_IDP_USERS } from '../../fixtures/idp/people.ts';
import { aclHash } from '../../pipeline/ingest.ts';
import { readDocument } from '../../pipeline/store.ts';
import { encrypt, newDataKey, packSealed } from '../../vault/envelope.ts';
import type { KeyProvider } from '../../vault/key-provider.ts';
import { ASKERS, CATEGORIES, CHUNKS_PER_DOC, DocumentGenerator, NESTED_GROUPS, PRIVATE_GROUPS, privateGroup, type TopicModel, vectorLiteral } from './company.ts';
import type { BenchDatabase } from './database.ts';
import { documentKeyContext } from '../../vault/wrap-contexts.ts';

/** Documents per insert transaction. */
const BATCH_DOCS = 500;
export const BENCH_WORKSPACE = 'bench';

export interface SeededAsker {
  label: string;
  email: string;
  principalId: number;
  principalSet: number[];
  visibleChunks: number;
}

export interface SeededCompany {
  workspaceId: string;
  documents: number;
  chunks: number;
  askers: SeededAsker[];
}

export interface SeedReport {
  documents: number;
  chunks: number;
  /** Generate, seal and insert (indexes dropped), in seconds. */
  loadSeconds: number;
  ginSeconds: number;
  hnswSeconds: number;
  vacuumAnalyzeSeconds: number;
  totalSeconds: number;
  sizesMiB: { chunksHeap: number; chunksToast: number; hnswIndex: number; ginIndex: number; vaultBlobs: number };
  embeddingStorage: EmbeddingStorage;
  efConstruction: number | 'schema';
  /** Heap bytes per chunk row: below the vector's 1,540 bytes means the vectors live in the TOAST table. */
  heapBytesPerChunk: number;
}

// Mirrors pipeline/store.ts (version 1, aad): checked after seeding by decrypting through readDocument.
const wrapContext = (workspaceId: string, documentId: string) => documentKeyContext(workspaceId, documentId, 1);
const aad = (workspaceId: string, documentId: string, part: string) => ({ workspaceId, documentId, version: 1, part });

interface Batch {
  doc: { id: string[]; sourceId: string[]; container: string[]; url: string[]; aclHash: string[]; dek: Buffer[]; kek: string[]; blob: Buffer[] };
  grant: { doc: string[]; principal: number[] };
  chunk: { doc: string[]; ordinal: number[]; acl: string[]; embedding: string[]; sealed: Buffer[]; tokens: number[] };
}

async function prepareBatch(gen: DocumentGenerator, keys: KeyProvider, workspaceId: string, ids: readonly string[], idOf: (ref: Parameters<typeof principalKey>[0]) => number): Promise<Batch> {
  const b: Batch = {
    doc: { id: [], sourceId: [], container: [], url: [], aclHash: [], dek: [], kek: [], blob: [] },
    grant: { doc: [], principal: [] },
    chunk: { doc: [], ordinal: [], acl: [], embedding: [], sealed: [], tokens: [] },
  };
  for (const id of ids) {
    const d = gen.next();
    const principals = [...new Set(d.grants.map(idOf))].sort((x, y) => x - y);
    const dek = newDataKey();
    try {
      b.doc.id.push(id);
      b.doc.sourceId.push(`bench-doc-${d.index}`);
      b.doc.container.push(`${d.category}/${d.topic}`);
      b.doc.url.push(`https://bench.example/doc/${d.index}`);
      b.doc.aclHash.push(aclHash({ acl: d.grants }));
      const { wrapped, keyId } = await keys.wrap(dek, wrapContext(workspaceId, id));
      b.doc.dek.push(wrapped);
      b.doc.kek.push(keyId);
      const text = d.chunks.map((c) => c.text).join('\n\n');
      b.doc.blob.push(packSealed(encrypt(Buffer.from(JSON.stringify({ title: d.title, text }), 'utf8'), aad(workspaceId, id, 'blob'), dek)));
      for (const p of principals) {
        b.grant.doc.push(id);
        b.grant.principal.push(p);
      }
      d.chunks.forEach((c, ordinal) => {
        b.chunk.doc.push(id);
        b.chunk.ordinal.push(ordinal);
        b.chunk.acl.push(`{${principals.join(',')}}`);
        b.chunk.embedding.push(vectorLiteral(c.embedding));
        b.chunk.sealed.push(packSealed(encrypt(Buffer.from(c.text, 'utf8'), aad(workspaceId, id, `chunk:${ordinal}`), dek)));
        b.chunk.tokens.push(Math.ceil(c.text.length / 4));
      });
    } finally {
      dek.fill(0);
    }
  }
  return b;
}

async function insertBatch(client: pg.PoolClient, workspaceId: string, connectionId: string, b: Batch): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(
      `INSERT INTO documents (id, workspace_id, connection_id, source_id, container_id, kind, url, content_version, acl_hash, wrapped_dek, kek_id, source_updated_at)
       OVERRIDING SYSTEM VALUE
       SELECT t.id, $1, $2, t.source_id, t.container, 'slack_thread', t.url, 'v1', t.acl_hash, t.dek, t.kek, now()
       FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::text[]) AS t(id, source_id, container, url, acl_hash, dek, kek)`,
      [workspaceId, connectionId, b.doc.id, b.doc.sourceId, b.doc.container, b.doc.url, b.doc.aclHash, b.doc.dek, b.doc.kek],
    );
    await client.query(`INSERT INTO document_grants (document_id, principal_id) SELECT * FROM unnest($1::bigint[], $2::int[])`, [b.grant.doc, b.grant.principal]);
    await client.query(
      `INSERT INTO vault_blobs (document_id, workspace_id, version, sealed) SELECT t.id, $1, 1, t.sealed FROM unnest($2::bigint[], $3::bytea[]) AS t(id, sealed)`,
      [workspaceId, b.doc.id, b.doc.blob],
    );
    await client.query(
      `INSERT INTO chunks (workspace_id, document_id, ordinal, acl, embedding, sealed_text, token_count)
       SELECT $1, t.doc, t.ord, t.acl::int[], t.emb::vector, t.sealed, t.tokens
       FROM unnest($2::bigint[], $3::int[], $4::text[], $5::text[], $6::bytea[], $7::int[]) AS t(doc, ord, acl, emb, sealed, tokens)`,
      [workspaceId, b.chunk.doc, b.chunk.ordinal, b.chunk.acl, b.chunk.embedding, b.chunk.sealed, b.chunk.tokens],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Workspace, connection, the IdP's users, groups (one nested), specials and the askers' memberships. */
async function seedPrincipals(db: BenchDatabase, keys: KeyProvider) {
  const workspaceId = await ensureWorkspace(db.owner, BENCH_WORKSPACE);
  const connection = await createConnection(db.owner, keys, {
    workspaceId, name: 'bench-slack', source: 'slack', config: { apiUrl: 'http://127.0.0.1:1/' }, token: 'xoxb-bench',
  });
  await upsertDirectoryUsers(db.owner, workspaceId, SEEDED_IDP_USERS.map((u) => ({ email: u.email, displayName: u.name, active: true })));
  const refs = [
    ...CATEGORIES.flatMap((c) => (c.grant ? [c.grant] : [])),
    ...Array.from({ length: PRIVATE_GROUPS }, (_, i) => privateGroup(i)),
    ...NESTED_GROUPS.flatMap((n) => [n.group, n.member]),
    ...ASKERS.flatMap((a) => [{ kind: 'user' as const, key: `email:${a.email}` }, ...a.memberOf]),
  ];
  const ids = await ensurePrincipals(db.owner, workspaceId, refs);
  const idOf = (ref: Parameters<typeof principalKey>[0]): number => {
    const id = ids.get(principalKey(ref));
    if (id === undefined) throw new Error(`principal ${principalKey(ref)} was not created`);
    return id;
  };
  const edges = [
    ...NESTED_GROUPS.map((n) => [idOf(n.group), idOf(n.member)]),
    ...ASKERS.flatMap((a) => a.memberOf.map((g) => [idOf(g), idOf({ kind: 'user', key: `email:${a.email}` })])),
  ];
  await db.owner.query(
    `INSERT INTO memberships (workspace_id, group_id, member_id, connection_id) SELECT $1, g, m, $2 FROM unnest($3::int[], $4::int[]) AS t(g, m)`,
    [workspaceId, connection.id, edges.map((e) => e[0]), edges.map((e) => e[1])],
  );
  return { workspaceId, connectionId: connection.id, idOf };
}

/** Storage of chunks.embedding: as migrated (pgvector's default, external) or main (kept in the row). */
export type EmbeddingStorage = 'schema' | 'main';

/** Seeds `documents` documents (4 chunks each) into the fresh bench database. */
export async function seedCompany(
  db: BenchDatabase,
  keys: KeyProvider,
  model: TopicModel,
  opts: {
    documents: number;
    embeddingStorage: EmbeddingStorage;
    /** HNSW build candidate list; undefined: the migration's index (pgvector default 64). */
    efConstruction?: number | undefined;
    log: (line: string) => void;
  },
): Promise<SeedReport> {
  const { documents, log } = opts;
  const started = performance.now();
  const { workspaceId, connectionId, idOf } = await seedPrincipals(db, keys);
  // A row of a 1,540-byte vector plus a sealed ~800-byte chunk passes the 2 KB TOAST threshold, and
  // pgvector's `external` storage lets Postgres move the vector out of line (the largest column).
  // `main` moves the sealed text out instead, which retrieval never reads. Applies to rows written after it.
  if (opts.embeddingStorage === 'main') await db.owner.query('ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE MAIN');
  // Built once after loading: maintaining HNSW and GIN row by row would dominate the load.
  await db.owner.query('DROP INDEX chunks_embedding, chunks_acl');
  const gen = new DocumentGenerator(model);
  const loader = await db.owner.connect();
  try {
    await loader.query('SET synchronous_commit = off');
    let inflight: Promise<void> = Promise.resolve();
    let prepareMs = 0;
    let waitMs = 0;
    for (let done = 0; done < documents; ) {
      const n = Math.min(BATCH_DOCS, documents - done);
      const { rows } = await db.app.query<{ id: string }>(`SELECT nextval(pg_get_serial_sequence('documents', 'id'))::text AS id FROM generate_series(1, $1)`, [n]);
      // Generating and sealing the next batch overlaps Postgres inserting the previous one.
      let t = performance.now();
      const batch = await prepareBatch(gen, keys, workspaceId, rows.map((r) => r.id), idOf);
      prepareMs += performance.now() - t;
      t = performance.now();
      await inflight;
      waitMs += performance.now() - t;
      inflight = insertBatch(loader, workspaceId, connectionId, batch);
      done += n;
      if (done % 10_000 === 0 || done === documents) {
        log(`  loaded ${done} documents (${Math.round((performance.now() - started) / 1000)} s; generating + sealing ${Math.round(prepareMs / 1000)} s, waiting for inserts ${Math.round(waitMs / 1000)} s)`);
      }
    }
    await inflight;
  } finally {
    loader.release();
  }
  const loadSeconds = (performance.now() - started) / 1000;

  const builder = await db.owner.connect();
  let ginSeconds: number;
  let hnswSeconds: number;
  try {
    builder.on('notice', (n) => log(`  postgres: ${n.message}`));
    await builder.query(`SET maintenance_work_mem = '4GB'`);
    // pgvector 0.8.0's parallel HNSW build has a bug (fixed in 0.8.2), as in the migration.
    await builder.query('SET max_parallel_maintenance_workers = 0');
    let t = performance.now();
    await builder.query('CREATE INDEX chunks_acl ON chunks USING gin (acl)');
    ginSeconds = (performance.now() - t) / 1000;
    log(`  GIN index: ${ginSeconds.toFixed(1)} s`);
    t = performance.now();
    const withClause = opts.efConstruction === undefined ? '' : ` WITH (ef_construction = ${Math.trunc(opts.efConstruction)})`;
    await builder.query(`CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops)${withClause}`);
    hnswSeconds = (performance.now() - t) / 1000;
    log(`  HNSW index: ${hnswSeconds.toFixed(1)} s`);
  } finally {
    builder.removeAllListeners('notice');
    builder.release();
  }
  const t = performance.now();
  await db.owner.query('VACUUM (ANALYZE) chunks, documents, document_grants, vault_blobs, principals, memberships');
  const vacuumAnalyzeSeconds = (performance.now() - t) / 1000;
  const { rows: sizes } = await db.owner.query<{ h: string; t: string; i: string; g: string; b: string }>(
    `SELECT pg_relation_size('chunks') AS h, pg_total_relation_size('chunks') - pg_indexes_size('chunks') - pg_relation_size('chunks') AS t,
            pg_relation_size('chunks_embedding') AS i, pg_relation_size('chunks_acl') AS g, pg_total_relation_size('vault_blobs') AS b`,
  );
  const mib = (x: string | undefined) => Math.round(Number(x ?? 0) / 2 ** 20);
  return {
    documents,
    chunks: documents * CHUNKS_PER_DOC,
    loadSeconds: round1(loadSeconds), ginSeconds: round1(ginSeconds), hnswSeconds: round1(hnswSeconds),
    vacuumAnalyzeSeconds: round1(vacuumAnalyzeSeconds), totalSeconds: round1((performance.now() - started) / 1000),
    sizesMiB: { chunksHeap: mib(sizes[0]?.h), chunksToast: mib(sizes[0]?.t), hnswIndex: mib(sizes[0]?.i), ginIndex: mib(sizes[0]?.g), vaultBlobs: mib(sizes[0]?.b) },
    embeddingStorage: opts.embeddingStorage,
    efConstruction: opts.efConstruction ?? 'schema',
    heapBytesPerChunk: Math.round(Number(sizes[0]?.h ?? 0) / (documents * CHUNKS_PER_DOC)),
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** The seeded company as the query path sees it: askers, their principal sets and visible chunk counts. */
export async function describeCompany(pool: pg.Pool): Promise<SeededCompany> {
  const { rows: ws } = await pool.query<{ id: string }>(`SELECT id FROM workspaces WHERE name = $1`, [BENCH_WORKSPACE]);
  const workspaceId = ws[0]?.id;
  if (workspaceId === undefined) throw new Error('the bench database holds no bench workspace');
  const { rows: totals } = await pool.query<{ d: string; c: string }>(`SELECT (SELECT count(*) FROM documents) AS d, (SELECT count(*) FROM chunks) AS c`);
  const askers: SeededAsker[] = [];
  for (const a of ASKERS) {
    const { rows } = await pool.query<{ id: number }>(`SELECT id FROM principals WHERE workspace_id = $1 AND kind = 'user' AND key = $2`, [workspaceId, `email:${a.email}`]);
    const principalId = rows[0]?.id;
    if (principalId === undefined) throw new Error(`asker ${a.email} missing`);
    const set = await principalSet(pool, principalId);
    const { rows: n } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM chunks WHERE workspace_id = $1 AND acl && $2::int[]`, [workspaceId, set]);
    askers.push({ label: a.label, email: a.email, principalId, principalSet: set, visibleChunks: Number(n[0]?.n ?? 0) });
  }
  return { workspaceId, documents: Number(totals[0]?.d ?? 0), chunks: Number(totals[0]?.c ?? 0), askers };
}

/** Decrypts `sample` random documents through the production reader: the bulk sealing matches it. */
export async function verifySealing(pool: pg.Pool, keys: KeyProvider, sample: number): Promise<number> {
  const { rows } = await pool.query<{ id: string }>(`SELECT id::text FROM documents ORDER BY random() LIMIT $1`, [sample]);
  for (const r of rows) {
    const doc = await readDocument(pool, keys, r.id);
    if (doc.text.length === 0) throw new Error(`document ${r.id} decrypted to nothing`);
  }
  return rows.length;
}
