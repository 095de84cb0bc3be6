import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from './canonical.ts';

/** What a caller records: one query, admin action or erasure, with its outcome. */
export interface AuditEvent {
  /** The event's id (a UUID); a retried writer passes the same one so the event is stored once. Default: random. */
  id?: string;
  workspaceId: string;
  /** Kind of event, e.g. 'query', 'erasure', 'connection.pause'. */
  type: string;
  /** Canonical user id (or service name) that caused the event. */
  actor: string;
  /** When it happened (ISO 8601); defaults to the moment of append, not of insertion. */
  at?: string;
  /** Every document id the model was shown. */
  documentIds?: string[];
  model?: string;
  costUsd?: number;
  /** e.g. 'answered', 'refused', 'error'. */
  outcome: string;
  details?: Record<string, unknown>;
  /** Personal fields sealed under the subject's own key (erasure/personal.ts): destroying that key erases them, the chain still verifies. */
  personal?: SealedPersonal;
}

/** Personal fields of an entry, sealed with AES-256-GCM under a per-subject key. */
export const SealedPersonalSchema = z.strictObject({
  /** The subject key (subject_keys.id); it names no one. */
  keyId: z.string().min(1),
  /** Base64 of the packed ciphertext (vault/envelope.ts packSealed). */
  sealed: z.string().min(1),
});
export type SealedPersonal = z.infer<typeof SealedPersonalSchema>;

/** The canonical event as stored in audit_log.entry, in spool lines, and hashed into the chain. */
export const AuditEntrySchema = z.strictObject({
  id: z.uuid(),
  workspaceId: z.string().min(1),
  type: z.string().min(1),
  actor: z.string().min(1),
  at: z.iso.datetime({ precision: 3 }),
  outcome: z.string().min(1),
  documentIds: z.array(z.string()).optional(),
  model: z.string().min(1).optional(),
  costUsd: z.number().nonnegative().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
  personal: SealedPersonalSchema.optional(),
});

export type AuditEntry = z.infer<typeof AuditEntrySchema>;

/**
 * Gives the event an id and a millisecond UTC timestamp and validates it. Throws (TypeError or
 * ZodError) on an event that could not be stored faithfully, so a bad event fails its caller at once
 * instead of sitting in the spool forever.
 */
export function toEntry(event: AuditEvent): AuditEntry {
  const at = event.at === undefined ? new Date() : new Date(event.at);
  if (Number.isNaN(at.getTime())) throw new TypeError(`audit event: invalid at ${JSON.stringify(event.at)}`);
  const draft = {
    id: event.id ?? randomUUID(),
    workspaceId: event.workspaceId,
    type: event.type,
    actor: event.actor,
    at: at.toISOString(),
    outcome: event.outcome,
    documentIds: event.documentIds,
    model: event.model,
    costUsd: event.costUsd,
    details: event.details,
    personal: event.personal,
  };
  const entry = AuditEntrySchema.parse(Object.fromEntries(Object.entries(draft).filter(([, v]) => v !== undefined)));
  canonicalJson(entry);
  return entry;
}
