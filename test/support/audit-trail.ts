import { join } from 'node:path';
import type pg from 'pg';
import { AuditLog } from '../../audit/log.ts';
import { LocalEd25519Signer } from '../../audit/signer.ts';

/** A test's audit trail: a signing key, spool and checkpoint files under `dir`, entries in `pool`'s database. */
export async function auditTrailIn(pool: pg.Pool, dir: string): Promise<{ audit: AuditLog; signer: LocalEd25519Signer; checkpointDir: string }> {
  const signer = await LocalEd25519Signer.open(join(dir, 'audit.pem'));
  const checkpointDir = join(dir, 'checkpoints');
  return { audit: new AuditLog({ pool, spoolDir: join(dir, 'spool'), checkpointDir, signer }), signer, checkpointDir };
}
