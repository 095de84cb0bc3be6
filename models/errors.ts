/**
 * Expected failures of a model provider call. Kept beside the providers because core/errors.ts is
 * shared with the sources; the codes map one-to-one onto what an edge tells the asker.
 */

/** Stable codes of model-provider failures. */
export type ModelErrorCode =
  /** 401/403: the key is wrong, revoked or lacks access to the model. */
  | 'MODEL_AUTH_FAILED'
  /** 429: the provider asks us to slow down. */
  | 'MODEL_RATE_LIMITED'
  /** 5xx, connection refused or reset: worth retrying later. */
  | 'MODEL_UNAVAILABLE'
  /** Another 4xx: the provider refused this request (context too long, unknown model, ...). */
  | 'MODEL_REJECTED'
  /** A 2xx whose body is not JSON or not the protocol's shape. */
  | 'MODEL_BAD_RESPONSE';

/** A provider call failed in an expected way. */
export class ModelError extends Error {
  readonly code: ModelErrorCode;
  /** HTTP status, when the provider answered at all. */
  readonly status: number | undefined;

  constructor(code: ModelErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ModelError';
    this.code = code;
    this.status = options?.status;
  }
}

/** The ModelError code for an HTTP status that is not 2xx. */
export function codeForStatus(status: number): ModelErrorCode {
  if (status === 401 || status === 403) return 'MODEL_AUTH_FAILED';
  if (status === 429) return 'MODEL_RATE_LIMITED';
  if (status >= 500) return 'MODEL_UNAVAILABLE';
  return 'MODEL_REJECTED';
}
