/** Inputs and outputs of the erasure workflow (plain data: crosses Temporal). */

/** Workflow type name (exported from workflows/workflows.ts). */
export const ERASURE_WORKFLOW = 'eraseSubjectWorkflow';

/** Workflow id of a subject's erasure: derived from the pseudonym, so a repeat request finds the first. */
export const erasureWorkflowId = (workspaceId: string, pseudonym: string): string => `erasure-${workspaceId}-${pseudonym.slice(0, 32)}`;

/** One erasure request. No identity in clear: the principal id and the pseudonym only. */
export interface ErasureInput {
  /** The workflow id; also the erasure request's id. */
  requestId: string;
  workspaceId: string;
  /** The canonical user; null when the directory no longer has them (only keys and rules are left to act on). */
  principalId: number | null;
  /** Hex HMAC of the canonical user key (erasure/pseudonym.ts). */
  pseudonym: string;
  /** Who asked for it, e.g. `cli:alice` or `principal:7`. */
  requestedBy: string;
  reason: string | null;
  requestedAt: string;
  /** Heartbeat timeout of the deleting activity, in seconds (default 60); tests shorten it to fail over fast. */
  heartbeatTimeoutSeconds?: number;
  /** Documents deleted per transaction (default 100). */
  batchSize?: number;
}

/** A finished erasure: its counts and the signed bundle (see erasure/bundle.ts). */
export interface ErasureResult {
  requestId: string;
  pseudonym: string;
  completedAt: string;
  /** What was erased, per artifact class. */
  erased: Record<string, number>;
  destroyedKeyIds: string[];
  /** Connections whose next sync rebuilds shared documents without the subject (trigger them now). */
  rescanConnections: string[];
  bundle: {
    /** manifest.json, UTF-8. */
    manifest: string;
    /** Base64 of the raw Ed25519 signature. */
    signature: string;
    publicKeyPem: string;
  };
}
