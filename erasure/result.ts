/** The result of a finished erasure, as the workflow returns it and as a repeat request reads it back. */
import type { ErasureResult } from '../workflows/erasure/types.ts';
import type { SignedBundle } from './bundle.ts';
import type { ErasureRecord } from './records.ts';

/** The result stored in a completed request row; throws for a request still running. */
export function resultOf(record: ErasureRecord): ErasureResult {
  if (!record.bundle || !record.completedAt) throw new Error(`erasure ${record.id} has not completed`);
  return {
    requestId: record.id,
    pseudonym: record.subject,
    completedAt: record.completedAt.toISOString(),
    erased: record.counts,
    destroyedKeyIds: record.destroyedKeyIds,
    rescanConnections: [...new Set(record.notes.rescanScopes.map((s) => s.split('/')[0] ?? ''))].filter((id) => id !== '').sort(),
    bundle: { manifest: record.bundle.manifest, signature: record.bundle.signature.toString('base64'), publicKeyPem: record.bundle.publicKeyPem },
  };
}

/** The signed bundle carried in a result, as the files of a bundle directory hold it. */
export function bundleOf(result: ErasureResult): SignedBundle {
  return {
    manifest: Buffer.from(result.bundle.manifest, 'utf8'),
    signature: Buffer.from(result.bundle.signature, 'base64'),
    publicKeyPem: result.bundle.publicKeyPem,
  };
}
