import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Queryable } from '../db/pool.ts';
import { chainHash, GENESIS_HASH } from './chain.ts';
import { checkpointSignatureValid, loadCheckpointFiles, loadCheckpointRows, type Checkpoint } from './checkpoint.ts';
import { AuditEntrySchema } from './entry.ts';
import { keyIdOf } from './signer.ts';

/** Outcome of verifyAudit: counts when intact, else the first seq that cannot be trusted and why. */
export type VerifyResult = { ok: true; entries: number; checkpoints: number } | { ok: false; firstBrokenSeq: number; reason: string };

export interface VerifyOptions {
  /** The checkpoint signer's Ed25519 public key (KeyObject or SPKI PEM). */
  publicKey: KeyObject | string;
  /** The directory of checkpoint files kept outside the database; without it a truncated tail goes unseen if its DB checkpoints were removed too. */
  checkpointDir?: string;
}

interface Broken {
  seq: number;
  reason: string;
}

const PAGE = 1000;

/**
 * Recomputes the whole chain and checks it against every signed checkpoint (rows and files):
 * modified, deleted, reordered or inserted entries, a truncated tail, and bad signatures.
 */
export async function verifyAudit(db: Queryable, opts: VerifyOptions): Promise<VerifyResult> {
  const publicKey = typeof opts.publicKey === 'string' ? createPublicKey(opts.publicKey) : opts.publicKey;
  const keyId = keyIdOf(publicKey);
  // Checkpoints are read before the entries: each one is written after its entry committed, so
  // every checkpoint seen here names an entry the walk below can see.
  const loaded = [...(await loadCheckpointRows(db)), ...(opts.checkpointDir ? await loadCheckpointFiles(opts.checkpointDir) : [])];
  const problems: Broken[] = [];
  const bySeq = new Map<number, { source: string; checkpoint: Checkpoint }[]>();
  for (const c of loaded) {
    if ('problem' in c) problems.push({ seq: c.seq, reason: `${c.source} ${c.problem}` });
    else if (!checkpointSignatureValid(c.checkpoint, publicKey, keyId)) problems.push({ seq: c.seq, reason: `${c.source} has an invalid signature (or another key: ${c.checkpoint.keyId})` });
    else bySeq.set(c.seq, [...(bySeq.get(c.seq) ?? []), { source: c.source, checkpoint: c.checkpoint }]);
  }
  const walk = await walkChain(db, bySeq);
  if (walk.broken) problems.push(walk.broken);
  else {
    for (const [seq, list] of bySeq) {
      if (seq > walk.entries) {
        problems.push({ seq: walk.entries + 1, reason: `${list[0]?.source} covers seq ${seq} but the log ends at ${walk.entries}: entries were removed from the tail` });
      }
    }
  }
  const first = problems.sort((a, b) => a.seq - b.seq)[0];
  if (first) return { ok: false, firstBrokenSeq: first.seq, reason: first.reason };
  // Distinct checkpoints: the same one is usually both a row and a file.
  return { ok: true, entries: walk.entries, checkpoints: bySeq.size };
}

async function walkChain(db: Queryable, bySeq: ReadonlyMap<number, { source: string; checkpoint: Checkpoint }[]>): Promise<{ entries: number; broken?: Broken }> {
  let expected = 1;
  let prev = GENESIS_HASH;
  let lastMatched = 0;
  for (;;) {
    const { rows } = await db.query<{ seq: string; event_id: string; workspace_id: string; at_us: string; entry: unknown; prev_hash: Buffer; hash: Buffer }>(
      `SELECT seq, event_id::text AS event_id, workspace_id, (extract(epoch FROM at) * 1000000)::bigint::text AS at_us, entry, prev_hash, hash
         FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT ${PAGE}`,
      [expected],
    );
    for (const row of rows) {
      const seq = Number(row.seq);
      const broken = (reason: string): { entries: number; broken: Broken } => ({ entries: expected - 1, broken: { seq: expected, reason } });
      if (seq !== expected) return broken(`entry ${expected} is missing (deleted): the next entry is ${seq}`);
      if (!row.prev_hash.equals(prev)) return broken(`entry ${seq} does not link to entry ${seq - 1} (reordered, inserted or rewritten)`);
      if (!safeChainHash(prev, seq, row.entry)?.equals(row.hash)) return broken(`entry ${seq} does not match its hash (modified)`);
      const entry = AuditEntrySchema.safeParse(row.entry);
      if (!entry.success) return broken(`entry ${seq} is not a valid audit entry`);
      if (entry.data.id !== row.event_id || entry.data.workspaceId !== row.workspace_id || BigInt(Date.parse(entry.data.at)) * 1000n !== BigInt(row.at_us)) {
        return broken(`entry ${seq}: event_id, workspace_id or at columns differ from the hashed entry`);
      }
      for (const { source, checkpoint } of bySeq.get(seq) ?? []) {
        if (checkpoint.hash !== row.hash.toString('hex')) {
          return { entries: seq, broken: { seq: lastMatched + 1, reason: `${source} signed a different hash for entry ${seq}: entries after ${lastMatched} were rewritten` } };
        }
      }
      if (bySeq.has(seq)) lastMatched = seq;
      prev = row.hash;
      expected += 1;
    }
    if (rows.length < PAGE) return { entries: expected - 1 };
  }
}

function safeChainHash(prev: Buffer, seq: number, entry: unknown): Buffer | undefined {
  try {
    return chainHash(prev, seq, entry);
  } catch {
    return undefined;
  }
}
