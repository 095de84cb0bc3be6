/** Non-secret settings of a Drive connection (connections.config), validated by the activities. */
import { z } from 'zod';

export const DriveConfigSchema = z.object({
  /** Root of the Drive API: `https://www.googleapis.com/` in production, an emulator's in tests. */
  rootUrl: z.url(),
  /** Root of the Admin SDK (default `rootUrl`; Google's is `https://admin.googleapis.com/`). */
  adminRootUrl: z.url().optional(),
  /** Base URL of Astry's Drive push route (`.../v1/webhooks/drive`); unset: no push channels, schedule only. */
  webhookUrl: z.url().optional(),
  /** Back-off of quota errors (403 userRateLimitExceeded, 429) and 5xx, per call. */
  retry: z
    .object({
      maxAttempts: z.number().int().min(1).max(20).optional(),
      baseDelayMs: z.number().int().min(0).optional(),
      maxDelayMs: z.number().int().min(0).optional(),
    })
    .optional(),
  /** Changes per changes.list page, i.e. per committed cursor step (default 500, Drive's max 1000). */
  changesPageSize: z.number().int().min(1).max(1000).default(500),
  /** Hours between full re-listings of every scope, which catch anything a change log missed (default 24). */
  fullRescanHours: z.number().positive().default(24),
});
export type DriveConfig = z.infer<typeof DriveConfigSchema>;

/** The access token in a connection's sealed credentials: a bare token, or JSON `{"access_token": ...}`. */
export function accessTokenOf(credentials: string): string {
  const trimmed = credentials.trim();
  if (!trimmed.startsWith('{')) return trimmed;
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    return '';
  }
  const parsed = z.object({ access_token: z.string().min(1) }).safeParse(json);
  // '' makes the connector refuse with CONFIG_INVALID rather than send garbage as a token.
  return parsed.success ? parsed.data.access_token : '';
}
