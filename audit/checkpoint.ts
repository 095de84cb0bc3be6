import { randomUUID, verify, type KeyObject } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { z } from 'zod';
import type { Queryable } from '../db/pool.ts';
import { canonicalJson } from './canonical.ts';
import { fsyncDir } from './fsutil.ts';
import type { CheckpointSigner } from './signer.ts';
import type { ChainLink } from './store.ts';

export { keyIdOf, LocalEd25519Signer, type CheckpointSigner } from './signer.ts';

/** A signed statement "the chain had `hash` at `seq`", as stored in a checkpoint file. */
export const CheckpointSchema = z.strictObject({
  seq: z.number().int().min(1),
  /** Hex sha256 chain hash of entry `seq`. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  at: z.iso.datetime({ precision: 3 }),
  keyId: z.string().min(1),
  /** Base64 Ed25519 signature over checkpointPayload(). */
  signature: z.string().min(1),
});

export type Checkpoint = z.infer<typeof CheckpointSchema>;

/** Checkpoint file names: zero-padded seq first, so a listing sorts by seq. */
const FILE_NAME = /^(\d{20})-[0-9a-f-]{36}\.json$/;

/** The signed bytes; the `kind` field keeps these signatures from meaning anything elsewhere. */
export function checkpointPayload(c: Pick<Checkpoint, 'seq' | 'hash' | 'at' | 'keyId'>): Buffer {
  return Buffer.from(canonicalJson({ kind: 'astry.audit.checkpoint', seq: c.seq, hash: c.hash, at: c.at, keyId: c.keyId }), 'utf8');
}

/** Signs a checkpoint over `link`. */
export async function signCheckpoint(signer: CheckpointSigner, link: ChainLink): Promise<Checkpoint> {
  const unsigned = { seq: link.seq, hash: link.hash.toString('hex'), at: new Date().toISOString(), keyId: signer.keyId };
  const signature = await signer.sign(checkpointPayload(unsigned));
  return { ...unsigned, signature: signature.toString('base64') };
}

/** True when `c` is signed by `publicKey`. */
export function checkpointSignatureValid(c: Checkpoint, publicKey: KeyObject, keyId: string): boolean {
  return c.keyId === keyId && verify(null, checkpointPayload(c), publicKey, Buffer.from(c.signature, 'base64'));
}

/**
 * Records a checkpoint outside the database first (one JSON file, written to a temporary name,
 * fsynced, renamed, directory fsynced), then in audit_checkpoints.
 */
export async function recordCheckpoint(pool: pg.Pool, dir: string, c: Checkpoint): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const name = `${String(c.seq).padStart(20, '0')}-${randomUUID()}.json`;
  const temporary = join(dir, `.${name}.tmp`);
  const file = await open(temporary, 'wx', 0o644);
  try {
    await file.writeFile(`${JSON.stringify(c, null, 2)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, join(dir, name));
  await fsyncDir(dir);
  await pool.query(`INSERT INTO audit_checkpoints (seq, hash, signature, key_id, at) VALUES ($1, $2, $3, $4, $5)`, [
    c.seq,
    Buffer.from(c.hash, 'hex'),
    Buffer.from(c.signature, 'base64'),
    c.keyId,
    c.at,
  ]);
}

/** A checkpoint read back for verification, or the reason it could not be read. */
export type LoadedCheckpoint = { source: string; seq: number } & ({ checkpoint: Checkpoint } | { problem: string });

/** Every checkpoint in audit_checkpoints. */
export async function loadCheckpointRows(db: Queryable): Promise<LoadedCheckpoint[]> {
  const { rows } = await db.query<{ id: string; seq: string; hash: Buffer; signature: Buffer; key_id: string; at: Date }>(
    `SELECT id, seq, hash, signature, key_id, at FROM audit_checkpoints ORDER BY seq, id`,
  );
  return rows.map((r) => ({
    source: `audit_checkpoints row ${r.id}`,
    seq: Number(r.seq),
    checkpoint: { seq: Number(r.seq), hash: r.hash.toString('hex'), at: r.at.toISOString(), keyId: r.key_id, signature: r.signature.toString('base64') },
  }));
}

/** Every checkpoint file in `dir` (none when it does not exist); unreadable files are reported, not skipped. */
export async function loadCheckpointFiles(dir: string): Promise<LoadedCheckpoint[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const loaded: LoadedCheckpoint[] = [];
  for (const name of names.sort()) {
    const match = FILE_NAME.exec(name);
    if (!match) continue;
    const source = `checkpoint file ${join(dir, name)}`;
    const seq = Number(match[1]);
    let parsed: ReturnType<typeof CheckpointSchema.safeParse>;
    try {
      parsed = CheckpointSchema.safeParse(JSON.parse(await readFile(join(dir, name), 'utf8')));
    } catch {
      loaded.push({ source, seq, problem: 'is not valid JSON' });
      continue;
    }
    if (!parsed.success) loaded.push({ source, seq, problem: `is malformed: ${parsed.error.issues[0]?.message ?? 'invalid'}` });
    else if (parsed.data.seq !== seq) loaded.push({ source, seq, problem: `names seq ${seq} but holds seq ${parsed.data.seq}` });
    else loaded.push({ source, seq, checkpoint: parsed.data });
  }
  return loaded;
}
