// Probes for the erasure tests: every decrypted text Astry holds, and nearest neighbours of vectors.
import type { Queryable } from '../../db/pool.ts';
import type { Company } from '../../fixtures/slack/types.ts';
import { decrypt, unpackSealed } from '../../vault/envelope.ts';
import type { KeyProvider } from '../../vault/key-provider.ts';
import { readDocument } from '../../pipeline/store.ts';

/** Everything the index yields in clear: every vault blob and every chunk, decrypted. */
export async function allDecryptedTexts(db: Queryable, keys: KeyProvider): Promise<{ blobs: Map<string, string>; chunks: Map<string, string> }> {
  const blobs = new Map<string, string>();
  const chunks = new Map<string, string>();
  const { rows: docs } = await db.query<{ id: string; workspace_id: string; version: number; wrapped_dek: Buffer; kek_id: string }>(
    `SELECT id, workspace_id, version, wrapped_dek, kek_id FROM documents ORDER BY id`,
  );
  for (const d of docs) {
    const { title, text } = await readDocument(db, keys, d.id);
    blobs.set(d.id, `${title}\n${text}`);
    const dek = await keys.unwrap(d.wrapped_dek, d.kek_id, `astry/document-key/${d.workspace_id}/${d.id}/${d.version}`);
    const { rows } = await db.query<{ id: string; ordinal: number; sealed_text: Buffer }>(`SELECT id, ordinal, sealed_text FROM chunks WHERE document_id = $1`, [d.id]);
    for (const c of rows) {
      const aad = { workspaceId: d.workspace_id, documentId: d.id, version: d.version, part: `chunk:${c.ordinal}` };
      chunks.set(c.id, decrypt(unpackSealed(c.sealed_text), aad, dek).toString('utf8'));
    }
    dek.fill(0);
  }
  return { blobs, chunks };
}

/** The chunk ids nearest to `vector` over ALL chunks (no ACL: the probe looks at everything). */
export async function nearestChunks(db: Queryable, vector: string, k = 5): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(`SELECT id FROM chunks ORDER BY embedding <=> $1::vector LIMIT $2`, [vector, k]);
  return rows.map((r) => r.id);
}

/** The vectors of the given documents' chunks, as pgvector text. */
export async function vectorsOf(db: Queryable, documentIds: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ embedding: string }>(`SELECT embedding::text AS embedding FROM chunks WHERE document_id = ANY($1::bigint[])`, [documentIds]);
  return rows.map((r) => r.embedding);
}

/**
 * Texts only `user` wrote in the seeded company (indexed channels), long enough to be distinctive,
 * as the rendered documents show them (mentions are not in plain text form, so those are skipped).
 */
export function distinctiveMessages(company: Company, user: string): string[] {
  const visible = new Set(company.channels.filter((c) => !c.is_im && !c.is_mpim && c.members.includes(company.botUserId)).map((c) => c.id));
  const mine = new Set<string>();
  const others = new Set<string>();
  for (const [channel, messages] of Object.entries(company.messages)) {
    if (!visible.has(channel)) continue;
    for (const m of messages) {
      if (m.subtype !== undefined) continue;
      (m.user === user ? mine : others).add(m.text);
    }
  }
  const elsewhere = [...others].join('\n');
  return [...mine].filter((t) => t.length >= 25 && !t.includes('<') && !t.includes('&') && traces(elsewhere, [t]).length === 0);
}

/** The probes a text contains: whole messages, or a 24-character head or tail (a chunk may cut a message). */
export function traces(text: string, messages: readonly string[]): string[] {
  return messages.filter((m) => text.includes(m) || text.includes(m.slice(0, 24)) || text.includes(m.slice(-24)));
}
