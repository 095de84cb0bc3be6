import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical.ts';

/** prev_hash of entry 1. */
export const GENESIS_HASH: Buffer = Buffer.alloc(32);

/**
 * hash(seq) = sha256(prev_hash || canonical({ seq, entry })). The seq is hashed beside the entry,
 * not merged into it, so no field of an entry can ever stand in for it.
 */
export function chainHash(prevHash: Buffer, seq: number, entry: unknown): Buffer {
  return createHash('sha256').update(prevHash).update(canonicalJson({ seq, entry }), 'utf8').digest();
}
