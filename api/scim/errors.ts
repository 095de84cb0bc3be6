import SCIMMY from 'scimmy';
import { isAstryError } from '../../core/errors.ts';

/** The `scimType` keywords of RFC 7644 §3.12. */
export type ScimErrorType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive';

const SCIM_TYPES: readonly string[] = [
  'invalidFilter', 'tooMany', 'uniqueness', 'mutability', 'invalidSyntax', 'invalidPath', 'noTarget', 'invalidValue', 'invalidVers', 'sensitive',
];

/** URN of the SCIM error message. */
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** A refusal at the SCIM edge: an HTTP status, an optional RFC 7644 `scimType`, and a detail for the client. */
export class ScimError extends Error {
  readonly status: number;
  readonly scimType: ScimErrorType | undefined;

  constructor(status: number, scimType: ScimErrorType | undefined, detail: string, options?: { cause?: unknown }) {
    super(detail, options);
    this.name = 'ScimError';
    this.status = status;
    this.scimType = scimType;
  }
}

/** The SCIM error body (RFC 7644 §3.12): `status` is a string there. */
export interface ScimErrorBody {
  schemas: [typeof ERROR_SCHEMA];
  status: string;
  scimType?: ScimErrorType;
  detail: string;
}

export function errorBody(err: ScimError): ScimErrorBody {
  return { schemas: [ERROR_SCHEMA], status: String(err.status), ...(err.scimType ? { scimType: err.scimType } : {}), detail: err.message };
}

function isScimType(value: unknown): value is ScimErrorType {
  return typeof value === 'string' && SCIM_TYPES.includes(value);
}

/**
 * Maps an expected failure to a ScimError: our own, scimmy's (schema and PATCH validation), the
 * persistence layer's CONFLICT/NOT_FOUND, and Postgres unique violations (a lost race on userName).
 * Anything else is unexpected and stays undefined (the caller answers 500).
 */
export function toScimError(err: unknown): ScimError | undefined {
  if (err instanceof ScimError) return err;
  if (err instanceof SCIMMY.Types.Error) {
    return new ScimError(err.status, isScimType(err.scimType) ? err.scimType : undefined, err.message, { cause: err });
  }
  if (isAstryError(err, 'CONFLICT')) return new ScimError(409, 'uniqueness', err.message, { cause: err });
  if (isAstryError(err, 'NOT_FOUND')) return new ScimError(404, undefined, err.message, { cause: err });
  if (typeof err === 'object' && err !== null && 'code' in err && err.code === '23505') {
    return new ScimError(409, 'uniqueness', 'a resource with the same unique attribute already exists', { cause: err });
  }
  return undefined;
}

/** Runs scimmy's coercion: its TypeErrors are bad input, reported as 400 invalidValue (as scimmy's own resources do). */
export function coerced<T>(work: () => T): T {
  try {
    return work();
  } catch (err) {
    if (err instanceof TypeError) throw new ScimError(400, 'invalidValue', err.message, { cause: err });
    throw err;
  }
}
