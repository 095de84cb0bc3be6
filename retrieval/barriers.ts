/**
 * Information barriers (e.g. research must not read deals). A later issue fills the policy; the
 * hook is here so the query path already applies it. Contract: a blocked document is dropped exactly
 * like a nonexistent one — no error, no count, no hint — before anything is materialized.
 */
export interface BarrierPolicy {
  /** The subset of `documentIds` the asker may see under the barriers in force. */
  allowed(asker: { principalId: number; principalSet: readonly number[] }, documentIds: readonly string[]): Promise<Set<string>>;
}

/** No barriers configured: everything the ACLs allow. */
export const noBarriers: BarrierPolicy = {
  allowed: (_asker, documentIds) => Promise.resolve(new Set(documentIds)),
};
