import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { ItemError, SourceDocument } from '../connectors/types.ts';
import { inTransaction } from '../db/pool.ts';
import { deleteDocuments, findDocuments, replaceGrants, type GrantRow } from '../db/documents.ts';
import { ensurePrincipals, principalKey } from '../db/principals.ts';
import { isAstryError } from '../core/errors.ts';
import { recordSubjects, type DocumentProvenance } from '../erasure/provenance.ts';
import { suppressedDocuments } from '../erasure/suppression.ts';
import type { KeyProvider } from '../vault/key-provider.ts';
import type { Chunker } from './chunk.ts';
import type { Embedder } from './embed.ts';
import { extractText } from './extract.ts';
import { storeDocument, type PreparedDocument } from './store.ts';

/** Everything the pipeline talks to; tests pass real instances. */
export interface PipelineDeps {
  pool: pg.Pool;
  keys: KeyProvider;
  embedder: Embedder;
  chunker: Chunker;
  /** Largest file downloaded and extracted, in bytes. */
  maxFileBytes: number;
  /** Per-file extraction time limit, in milliseconds. */
  extractTimeoutMs: number;
}

export interface IngestTarget {
  workspaceId: string;
  connectionId: string;
}

/** Counts of what a batch did, and the items that failed (the rest of the batch is stored). */
export interface BatchResult {
  indexed: number;
  unchanged: number;
  aclUpdated: number;
  chunks: number;
  /** Documents refused (and removed if stored) because an erasure's suppression rule names someone in them. */
  suppressed: number;
  errors: ItemError[];
}

/** sha256 over the sorted principal keys (and expiries) of a document's grants. */
export function aclHash(doc: Pick<SourceDocument, 'acl'>): string {
  const keys = [...new Set(doc.acl.map((g) => `${principalKey(g)}${g.expiresAt ? `@${g.expiresAt.toISOString()}` : ''}`))].sort();
  return createHash('sha256').update(keys.join('\n')).digest('hex');
}

/** Stable error record for one item: typed Astry errors keep their code, anything else is INTERNAL. */
export function itemError(itemId: string, err: unknown): ItemError {
  if (isAstryError(err)) return { itemId, code: err.code, message: err.message };
  return { itemId, code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

function isDataException(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' && err.code.startsWith('22');
}

async function documentText(deps: PipelineDeps, doc: SourceDocument): Promise<string> {
  if (doc.content.type === 'text') return doc.content.text;
  const bytes = await doc.content.fetch();
  return extractText(
    { fileName: doc.content.fileName, mimeType: doc.content.mimeType, bytes },
    { maxBytes: deps.maxFileBytes, timeoutMs: deps.extractTimeoutMs },
  );
}

/**
 * Extract -> chunk -> embed -> encrypt -> store for a batch of documents. Unchanged content is
 * skipped by version; an ACL-only change rewrites grants without re-embedding; a document that
 * fails (download, extraction, oversize) becomes an ItemError and the others are still stored.
 * Embeddings for the whole batch are computed in one call so small documents share forward passes.
 */
export async function ingestBatch(deps: PipelineDeps, target: IngestTarget, batch: readonly SourceDocument[]): Promise<BatchResult> {
  const result: BatchResult = { indexed: 0, unchanged: 0, aclUpdated: 0, chunks: 0, suppressed: 0, errors: [] };
  // Erased people's items are not imported again (and a stored version goes); re-checked when storing.
  const refused = await suppressedDocuments(deps.pool, deps.keys, target, batch);
  await deleteDocuments(deps.pool, target.connectionId, [...refused]);
  result.suppressed = refused.size;
  const docs = batch.filter((d) => !refused.has(d.sourceId));
  if (docs.length === 0) return result;
  const stored = await findDocuments(deps.pool, target.connectionId, docs.map((d) => d.sourceId));
  const principalIds = await ensurePrincipals(deps.pool, target.workspaceId, docs.flatMap((d) => d.acl));
  const grantsOf = (doc: SourceDocument): GrantRow[] =>
    doc.acl.flatMap((grant) => {
      const principalId = principalIds.get(principalKey(grant));
      return principalId === undefined ? [] : [{ principalId, expiresAt: grant.expiresAt ?? null }];
    });

  const toIndex: { doc: SourceDocument; hash: string }[] = [];
  const provenance: DocumentProvenance[] = [];
  for (const doc of docs) {
    const hash = aclHash(doc);
    const previous = stored.get(doc.sourceId);
    if (previous && previous.contentVersion === doc.contentVersion) {
      // Backfills provenance of documents stored before connectors reported subjects.
      if (doc.subjects) provenance.push({ documentId: previous.id, subjects: doc.subjects });
      if (previous.aclHash === hash) {
        result.unchanged++;
      } else {
        await inTransaction(deps.pool, (client) => replaceGrants(client, previous.id, grantsOf(doc), hash));
        result.aclUpdated++;
      }
      continue;
    }
    toIndex.push({ doc, hash });
  }
  await recordSubjects(deps.pool, target, provenance);

  const prepared: PreparedDocument[] = [];
  for (const { doc, hash } of toIndex) {
    try {
      const text = await documentText(deps, doc);
      const chunks = deps.chunker.chunk(text).map((c) => ({ ...c, embedding: [] as number[] }));
      prepared.push({ doc, title: doc.title, text, chunks, grants: grantsOf(doc), aclHash: hash });
    } catch (err) {
      result.errors.push(itemError(doc.sourceId, err));
    }
  }

  const inputs = prepared.flatMap((p) => p.chunks.map((c) => `${p.title.slice(0, 60)}\n${c.text}`));
  const vectors = await deps.embedder.embed(inputs);
  let next = 0;
  for (const p of prepared) for (const c of p.chunks) c.embedding = vectors[next++] ?? [];

  for (const p of prepared) {
    try {
      const kept = await inTransaction(deps.pool, async (client) => {
        if ((await suppressedDocuments(client, deps.keys, target, [p.doc], { lock: true })).size > 0) {
          await deleteDocuments(client, target.connectionId, [p.doc.sourceId]);
          return false;
        }
        await storeDocument(client, deps.keys, target, p);
        return true;
      });
      if (!kept) {
        result.suppressed++;
        continue;
      }
      result.indexed++;
      result.chunks += p.chunks.length;
    } catch (err) {
      // Bad data in one document (a Postgres data exception, class 22) is that item's error;
      // anything else (database down) is unexpected and fails the activity, which Temporal retries.
      if (!isDataException(err)) throw err;
      result.errors.push({ itemId: p.doc.sourceId, code: 'SOURCE_BAD_DATA', message: String(err) });
    }
  }
  return result;
}
