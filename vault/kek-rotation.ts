/**
 * KEK rotation with the local key files (`astry keys list|rotate|retire`, docs/keys.md): a new KEK
 * becomes the one that wraps, every wrapped data key is re-wrapped to it (vault/rewrap.ts), and an
 * old KEK's file is deleted only once no row needs it.
 */
import type pg from 'pg';
import { AstryError } from '../core/errors.ts';
import { LocalKeyFileProvider } from './key-provider.ts';
import { keyUsage, rewrapAll, rowsNotUnder, type RewrapOptions, type RewrapReport } from './rewrap.ts';

/** One rotation or retirement at a time per database (advisory lock on this name). */
const LOCK_NAME = 'astry/kek-rotation';

async function withRotationLock<T>(pool: pg.Pool, work: () => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(hashtext($1)) AS locked`, [LOCK_NAME]);
    if (rows[0]?.locked !== true) throw new AstryError('CONFLICT', 'another key rotation or retirement is running on this database');
    try {
      return await work();
    } finally {
      await client.query(`SELECT pg_advisory_unlock(hashtext($1))`, [LOCK_NAME]);
    }
  } finally {
    client.release();
  }
}

/** What `rotateKek` did. */
export interface KekRotation {
  /** The KEK that was active before, and the new one; null for both when resuming. */
  previous: string | null;
  created: string | null;
  report: RewrapReport;
}

/**
 * Creates a new KEK, makes it the active one and re-wraps every wrapped data key to it. With
 * `resume`, creates nothing and only re-wraps what is not under the active KEK yet (a pass that
 * stopped or crashed). Without it, refuses while an earlier pass is unfinished: two unfinished
 * generations of keys would make it unclear which old key may be retired.
 */
export async function rotateKek(pool: pg.Pool, keyFile: string, opts: RewrapOptions & { resume?: boolean } = {}): Promise<KekRotation> {
  return withRotationLock(pool, async () => {
    const ring = await LocalKeyFileProvider.open(keyFile);
    let previous: string | null = null;
    let created: string | null = null;
    if (opts.resume !== true) {
      const active = await ring.activeKeyId();
      const behind = await rowsNotUnder(pool, active);
      if (behind > 0) {
        throw new AstryError('CONFLICT', `${behind} wrapped keys are not under the active key ${active} yet (an earlier rotation stopped): finish it with \`astry keys rotate --resume\``);
      }
      ({ previous, next: created } = await LocalKeyFileProvider.rotate(keyFile));
    }
    const report = await rewrapAll(pool, ring, opts);
    return { previous, created, report };
  });
}

/** One KEK: its file (null when rows name a key that is nowhere on disk), whether it wraps, and how many keys it wraps per table. */
export interface KekStatus {
  keyId: string;
  file: string | null;
  active: boolean;
  rows: Record<string, number>;
}

/** Every KEK on disk or named by a row, with its use. */
export async function listKeks(pool: pg.Pool, keyFile: string): Promise<KekStatus[]> {
  const files = await LocalKeyFileProvider.list(keyFile);
  const usage = await keyUsage(pool);
  const statuses: KekStatus[] = files.map((f) => ({ keyId: f.keyId, file: f.file, active: f.active, rows: Object.fromEntries(usage.get(f.keyId) ?? []) }));
  for (const [keyId, byTable] of usage) {
    if (!files.some((f) => f.keyId === keyId)) statuses.push({ keyId, file: null, active: false, rows: Object.fromEntries(byTable) });
  }
  return statuses;
}

/**
 * Deletes the file of an old KEK. Refuses the active KEK, and any KEK some row is still wrapped by
 * (CONFLICT, with the counts): deleting it would make those rows unreadable for good.
 */
export async function retireKek(pool: pg.Pool, keyFile: string, keyId: string): Promise<string> {
  return withRotationLock(pool, async () => {
    const files = await LocalKeyFileProvider.list(keyFile);
    if (files.find((f) => f.active)?.keyId === keyId) throw new AstryError('CONFLICT', `${keyId} is the active key: rotate first`);
    const byTable = (await keyUsage(pool)).get(keyId);
    const used = [...(byTable ?? [])].filter(([, n]) => n > 0);
    if (used.length > 0) {
      const counts = used.map(([table, n]) => `${table}: ${n}`).join(', ');
      throw new AstryError('CONFLICT', `${keyId} still wraps data keys (${counts}): run \`astry keys rotate --resume\` first`);
    }
    return LocalKeyFileProvider.retire(keyFile, keyId);
  });
}
