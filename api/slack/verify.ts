/**
 * Slack request signatures. https://docs.slack.dev/authentication/verifying-requests-from-slack
 * The HMAC and its constant-time comparison are @slack/bolt's; the timestamp window is ours, because
 * Bolt only rejects timestamps that are too old, and a clock-skewed or forged future timestamp would
 * let a captured request be replayed for longer.
 */
import { isValidSlackRequest } from '@slack/bolt';

/** Why a request was rejected (for logs; the caller only ever hears 401). */
export type SignatureFailure = 'missing_headers' | 'stale_timestamp' | 'bad_signature';

/** Slack's own recommendation, and the most Bolt accepts: 5 minutes. */
export const MAX_TOLERANCE_SECONDS = 300;

export interface SignedRequest {
  /** The raw body, exactly as received. */
  body: string;
  signature: string | undefined;
  timestamp: string | undefined;
}

/** Checks the signature and that the timestamp is within `toleranceSeconds` of `nowMs`, either way. */
export function verifySlackSignature(
  signingSecret: string,
  request: SignedRequest,
  nowMs: number,
  toleranceSeconds = MAX_TOLERANCE_SECONDS,
): { ok: true } | { ok: false; reason: SignatureFailure } {
  const { signature, timestamp } = request;
  if (signature === undefined || timestamp === undefined || !/^\d{1,12}$/.test(timestamp) || !signature.startsWith('v0=')) {
    return { ok: false, reason: 'missing_headers' };
  }
  const seconds = Number(timestamp);
  if (Math.abs(nowMs / 1000 - seconds) > Math.min(toleranceSeconds, MAX_TOLERANCE_SECONDS)) return { ok: false, reason: 'stale_timestamp' };
  const valid = isValidSlackRequest({
    signingSecret,
    body: request.body,
    headers: { 'x-slack-signature': signature, 'x-slack-request-timestamp': seconds },
    nowMilliseconds: nowMs,
  });
  return valid ? { ok: true } : { ok: false, reason: 'bad_signature' };
}
