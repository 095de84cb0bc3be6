/**
 * The compliance manifest: what was erased for whom (by pseudonym), when, how much of each artifact
 * class, which keys were destroyed, the signed audit checkpoint covering the erasure's own entry, and
 * what was kept and why. Signed with Ed25519 over its exact bytes (bundle.ts).
 */
import { z } from 'zod';
import { CheckpointSchema } from '../audit/checkpoint.ts';
import type { ErasureRecord } from './records.ts';

const Iso = z.iso.datetime({ precision: 3 });
const Counts = z.record(z.string(), z.number().int().nonnegative());

export const ManifestSchema = z.strictObject({
  kind: z.literal('astry.erasure.manifest'),
  version: z.literal(1),
  request: z.strictObject({
    id: z.string().min(1),
    requestedBy: z.string().min(1),
    reason: z.string().nullable(),
    requestedAt: Iso,
  }),
  subject: z.strictObject({
    workspaceId: z.string().min(1),
    /** HMAC-SHA256 of the canonical user key under the workspace's pseudonym key. */
    pseudonym: z.string().regex(/^hmac-sha256:[0-9a-f]{64}$/),
  }),
  startedAt: Iso,
  completedAt: Iso,
  /** What the footprint held when the erasure began. */
  footprint: Counts,
  /** What the erasure deleted or shredded, per artifact class. */
  erased: Counts,
  destroyedKeyIds: z.array(z.string()),
  suppression: z.strictObject({ rules: z.number().int().nonnegative() }),
  /** Channels whose next sync re-reads them in full, rebuilding shared documents without the subject. */
  rebuild: z.strictObject({ scopes: z.number().int().nonnegative() }),
  audit: z.strictObject({
    entry: z.strictObject({ seq: z.number().int().min(1), eventId: z.uuid() }),
    checkpoint: CheckpointSchema,
  }),
  retained: z.array(z.strictObject({ what: z.string(), count: z.number().nullable(), why: z.string() })),
  signer: z.strictObject({ algorithm: z.literal('Ed25519'), keyId: z.string().min(1) }),
});
export type Manifest = z.infer<typeof ManifestSchema>;

/** What was kept, with the reason, for the manifest. */
function retained(record: ErasureRecord): Manifest['retained'] {
  const c = record.counts;
  return [
    {
      what: 'audit entries of the subject\'s queries',
      count: c.auditEntriesShredded ?? 0,
      why: 'kept in the hash chain for tamper evidence and operations (time, document ids, model, cost, outcome, request id); their personal fields (who asked, question hash, citations) are sealed under the destroyed keys and can no longer be read',
    },
    {
      what: 'suppression rules',
      count: c.suppressionRules ?? 0,
      why: 'keyed hashes of the subject\'s identifiers so that later syncs do not import their items again; they name no one without the workspace pseudonym key',
    },
    {
      what: 'this erasure request and its audit entry',
      count: 1,
      why: 'proof of the erasure (accountability); they hold the pseudonym, counts and key ids, no content',
    },
    {
      what: 'usage total',
      count: c.usageLedger ?? 0,
      why: `the subject's usage ledger rows are deleted; only their sum (${record.notes.usageUsd.toFixed(6)} USD) is kept here, for cost accounting`,
    },
    {
      what: 'directory entry',
      count: null,
      why: 'the canonical user, source identities and group memberships mirror the IdP and the sources for access control; they go when the IdP (SCIM) or the source deprovisions the account',
    },
    {
      what: 'content at the sources',
      count: null,
      why: 'Astry does not delete from Slack or other sources; the subject\'s messages and files remain there until erased there, and suppression keeps them out of Astry',
    },
    {
      what: 'free-text references',
      count: null,
      why: 'other people\'s text that names the subject in plain words (not a mention or authorship) is not provenance and is not removed',
    },
    {
      what: 'deleted rows in database storage and backups',
      count: null,
      why: 'deleted rows remain in Postgres pages until vacuum and in backups until their retention ends, still encrypted under keys wrapped by the KEK',
    },
  ];
}

/** The manifest of a finished erasure (every step recorded in `record`). */
export function buildManifest(record: ErasureRecord, completedAt: Date, signerKeyId: string): Manifest {
  if (!record.audit) throw new Error(`erasure ${record.id} has no audit proof yet`);
  const erased = Object.fromEntries(Object.entries(record.counts).filter(([k]) => k !== 'suppressionRules').sort(([a], [b]) => a.localeCompare(b)));
  return {
    kind: 'astry.erasure.manifest',
    version: 1,
    request: { id: record.id, requestedBy: record.requestedBy, reason: record.reason, requestedAt: record.requestedAt.toISOString() },
    subject: { workspaceId: record.workspaceId, pseudonym: `hmac-sha256:${record.subject}` },
    startedAt: record.startedAt.toISOString(),
    completedAt: completedAt.toISOString(),
    footprint: record.footprint ?? {},
    erased,
    destroyedKeyIds: record.destroyedKeyIds,
    suppression: { rules: record.counts.suppressionRules ?? 0 },
    rebuild: { scopes: record.notes.rescanScopes.length },
    audit: record.audit,
    retained: retained(record),
    signer: { algorithm: 'Ed25519', keyId: signerKeyId },
  };
}
