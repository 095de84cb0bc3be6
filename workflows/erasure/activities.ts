import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { ConnectionOptions } from 'bullmq';
import type pg from 'pg';
import { AuditLog } from '../../audit/log.ts';
import { LocalEd25519Signer, type CheckpointSigner } from '../../audit/signer.ts';
import { env } from '../../core/env.ts';
import { inTransaction } from '../../db/pool.ts';
import { purgeAskJobs } from '../../erasure/ask-jobs.ts';
import { footprintDocumentIds, measureFootprint, type Subject } from '../../erasure/footprint.ts';
import { buildManifest } from '../../erasure/manifest.ts';
import { signManifest } from '../../erasure/bundle.ts';
import { purgeDocumentBatch, purgeQueryHistory, shredSubjectKeys } from '../../erasure/purge.ts';
import { sourceIdentifier } from '../../erasure/pseudonym.ts';
import { addCounts, beginRecord, completeRecord, getRecord, setAuditProof, setCounts, setFootprint, type AuditProof, type ErasureRecord } from '../../erasure/records.ts';
import { resultOf } from '../../erasure/result.ts';
import { subjectIdentifiers } from '../../erasure/subject.ts';
import { addSuppressions } from '../../erasure/suppression.ts';
import type { KeyProvider } from '../../vault/key-provider.ts';
import { ASK_QUEUE, redisConnection } from '../../worker/queue.ts';
import type { ErasureInput, ErasureResult } from './types.ts';

/** What an erasure needs besides the database and the KEK. */
export interface ErasureServices {
  /** The audit trail the erasure's own entry goes to, with a checkpoint forced after it. */
  audit: AuditLog;
  /** Signs the manifest: the audit checkpoint key, so auditors trust one key for both. */
  signer: CheckpointSigner;
  /** BullMQ queues whose finished jobs hold questions and answers (worker/queue.ts); none if absent. */
  askQueues?: { connection: ConnectionOptions; names: string[] };
}

/** Dependencies of the erasure activities; the sync worker's ActivityDeps fit. */
export interface ErasureActivityDeps {
  pool: pg.Pool;
  keys: KeyProvider;
  /** Default: from the environment on first use (ASTRY_AUDIT_*, REDIS_URL and the `astry-ask` queue). */
  erasure?: ErasureServices;
}

async function servicesFromEnv(pool: pg.Pool): Promise<ErasureServices> {
  const config = env();
  const signer = await LocalEd25519Signer.open(config.ASTRY_AUDIT_SIGNING_KEY);
  const audit = new AuditLog({ pool, spoolDir: config.ASTRY_AUDIT_SPOOL_DIR, checkpointDir: config.ASTRY_AUDIT_CHECKPOINT_DIR, signer });
  return { audit, signer, askQueues: { connection: redisConnection(config.REDIS_URL), names: [ASK_QUEUE] } };
}

/** The erasure entry's event id: fixed per request, so a retried append is stored once. */
function auditEventId(requestId: string): string {
  const h = createHash('sha256').update(`astry/erasure-audit/${requestId}`).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50; // version 5 layout (name-based, SHA)
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80; // RFC 9562 variant
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

const subjectOf = (input: ErasureInput): Subject => ({ workspaceId: input.workspaceId, principalId: input.principalId, pseudonym: input.pseudonym });

async function record(pool: pg.Pool, id: string): Promise<ErasureRecord> {
  const found = await getRecord(pool, id);
  if (!found) throw new Error(`erasure request ${id} does not exist`);
  return found;
}

/**
 * Activities of the erasure workflow. Each is idempotent: it acts on what is still there and counts
 * in the transaction that deletes, so Temporal may retry any of them after a crash.
 */
export function createErasureActivities(deps: ErasureActivityDeps) {
  let services: Promise<ErasureServices> | undefined;
  const svc = (): Promise<ErasureServices> => (services ??= deps.erasure ? Promise.resolve(deps.erasure) : servicesFromEnv(deps.pool));

  return {
    /** Records the request (or finds it); a request that already completed returns its result. */
    async beginErasure(input: ErasureInput): Promise<ErasureResult | null> {
      const r = await beginRecord(deps.pool, { id: input.requestId, workspaceId: input.workspaceId, subject: input.pseudonym, requestedBy: input.requestedBy, reason: input.reason, requestedAt: input.requestedAt });
      return r.bundle ? resultOf(r) : null;
    },

    /** Adds the suppression rules first, so nothing re-imports the subject while the rest is deleted. */
    async suppressSubject(input: ErasureInput): Promise<number> {
      return inTransaction(deps.pool, async (client) => {
        const accounts = input.principalId === null ? [] : (await subjectIdentifiers(client, input.workspaceId, input.principalId)).accounts;
        const rules = await addSuppressions(
          client, deps.keys, input.workspaceId, input.requestId,
          accounts.map((a) => sourceIdentifier(a.source, a.sourceUserId)),
          [Buffer.from(input.pseudonym, 'hex')],
        );
        await setCounts(client, input.requestId, { suppressionRules: rules });
        return rules;
      });
    },

    async measureFootprint(input: ErasureInput): Promise<Record<string, number>> {
      const counts = await measureFootprint(deps.pool, subjectOf(input));
      await setFootprint(deps.pool, input.requestId, counts);
      return counts;
    },

    /** Usage ledger, Slack bot turns and queued/finished ask jobs of the subject and of answers drawn from their documents. */
    async purgeQueryHistory(input: ErasureInput): Promise<void> {
      const { derivedRequestIds, documentIds } = await purgeQueryHistory(deps.pool, subjectOf(input), input.requestId);
      const queues = (await svc()).askQueues;
      if (!queues) return;
      const removed = await purgeAskJobs(queues.connection, queues.names, {
        principalId: input.principalId, documentIds: new Set(documentIds), requestIds: new Set(derivedRequestIds),
      });
      if (removed > 0) await addCounts(deps.pool, input.requestId, { askJobs: removed });
    },

    /** Deletes the subject's documents batch by batch, heartbeating; returns the documents deleted so far. */
    async purgeDocuments(input: ErasureInput): Promise<number> {
      let batches = 0;
      while ((await purgeDocumentBatch(deps.pool, subjectOf(input), input.requestId, input.batchSize ?? 100)) > 0) {
        Context.current().heartbeat({ batches: ++batches });
      }
      return (await record(deps.pool, input.requestId)).counts.documents ?? 0;
    },

    /** Documents of the subject still stored (0 once the purge is complete). */
    async remainingDocuments(input: ErasureInput): Promise<number> {
      return (await footprintDocumentIds(deps.pool, subjectOf(input))).length;
    },

    async shredSubjectKeys(input: ErasureInput): Promise<string[]> {
      return (await shredSubjectKeys(deps.pool, subjectOf(input), input.requestId)).destroyedKeyIds;
    },

    /** Appends the erasure's own audit entry (once), then forces a signed checkpoint covering it. */
    async recordInAudit(input: ErasureInput): Promise<AuditProof> {
      const current = await record(deps.pool, input.requestId);
      if (current.audit) return current.audit;
      const { audit } = await svc();
      const eventId = auditEventId(input.requestId);
      await audit.append({
        id: eventId, workspaceId: input.workspaceId, type: 'erasure', actor: input.requestedBy, outcome: 'completed',
        details: { requestId: input.requestId, subject: `hmac-sha256:${input.pseudonym}`, erased: current.counts, destroyedKeyIds: current.destroyedKeyIds },
      });
      const seqOf = async (): Promise<number | undefined> => {
        const { rows } = await deps.pool.query<{ seq: string }>(`SELECT seq FROM audit_log WHERE event_id = $1`, [eventId]);
        return rows[0] ? Number(rows[0].seq) : undefined;
      };
      let seq = await seqOf();
      if (seq === undefined) {
        await audit.drain(); // it was spooled: Postgres was briefly unreachable
        seq = await seqOf();
      }
      if (seq === undefined) throw new Error('the erasure audit entry is not in the chain yet');
      const checkpoint = await audit.checkpoint();
      if (!checkpoint || checkpoint.seq < seq) throw new Error('no checkpoint covers the erasure audit entry');
      await setAuditProof(deps.pool, input.requestId, { entry: { seq, eventId }, checkpoint });
      const proof = (await record(deps.pool, input.requestId)).audit;
      if (!proof) throw new Error('the audit proof was not stored');
      return proof;
    },

    /** Builds and signs the manifest (once) and completes the request. */
    async sealBundle(input: ErasureInput): Promise<ErasureResult> {
      let current = await record(deps.pool, input.requestId);
      if (!current.bundle) {
        const { signer } = await svc();
        const completedAt = new Date();
        const signed = await signManifest(signer, buildManifest(current, completedAt, signer.keyId));
        await completeRecord(deps.pool, input.requestId, completedAt, { manifest: signed.manifest.toString('utf8'), signature: signed.signature, publicKeyPem: signed.publicKeyPem });
        current = await record(deps.pool, input.requestId);
      }
      return resultOf(current);
    },
  };
}

export type ErasureActivities = ReturnType<typeof createErasureActivities>;
