/**
 * Incremental sync of one Drive change log (My Drive, or one shared drive). First run, and every
 * full rescan: take the start page token, then list every item (resumable per page), then switch to
 * the change log from that token, so nothing changed during the listing is missed. Each changes
 * page is stored before its next token is committed: a crash resumes from the last stored page.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AclContext } from '../../connectors/drive/acl.ts';
import type { DriveConfig } from '../../connectors/drive/config.ts';
import type { DriveConnector, LogId } from '../../connectors/drive/connector.ts';
import type { DriveFile } from '../../connectors/drive/schemas.ts';
import { deleteDocuments, documentsInContainer } from '../../db/documents.ts';
import { addRunCounts, getCursor, setCursor } from '../../db/runs.ts';
import type { ActivityDeps } from '../activities/deps.ts';
import { DriveFileSync } from './files.ts';
import { MY_DRIVE, type DriveScope, type DriveScopeResult } from './types.ts';

/** Failed file ids kept for a retry on the next run, at most. */
const MAX_RETRY_IDS = 1000;

export const ScopeCursorSchema = z.discriminatedUnion('phase', [
  z.object({ phase: z.literal('listing'), startPageToken: z.string(), listPageToken: z.string().optional(), startedAt: z.string() }),
  z.object({ phase: z.literal('changes'), pageToken: z.string(), fullScanAt: z.string(), retry: z.array(z.string()).default([]) }),
]);
export type ScopeCursor = z.infer<typeof ScopeCursorSchema>;

/** Committed by the principals step: a rescan of every scope is requested when users are (un)suspended. */
export const DirectoryCursorSchema = z.object({ inactive: z.array(z.string()), rescanRequestedAt: z.string() });

/** A registered push channel of one scope (sync_cursors scope `watch:<scope>`). */
export const WatchCursorSchema = z.object({ id: z.string(), token: z.string(), resourceId: z.string(), expirationMs: z.number() });

export const cursorScope = (scope: DriveScope) => `changes:${scope}`;
export const watchScope = (scope: DriveScope) => `watch:${scope}`;

/** How long a push channel is asked to live, and how early it is renewed. */
const CHANNEL_TTL_MS = 24 * 3_600_000;
const CHANNEL_RENEW_MS = 3_600_000;

export async function syncDriveScope(
  deps: ActivityDeps,
  drive: DriveConnector,
  ctx: AclContext,
  ids: { workspaceId: string; connectionId: string; runId: string },
  scope: DriveScope,
  config: DriveConfig,
  heartbeat: (detail: unknown) => void,
): Promise<DriveScopeResult> {
  const log: LogId = scope === MY_DRIVE ? null : scope;
  const key = cursorScope(scope);
  const stored = ScopeCursorSchema.safeParse(await getCursor(deps.pool, ids.connectionId, key));
  let cursor: ScopeCursor | null = stored.success ? stored.data : null;
  const directory = DirectoryCursorSchema.safeParse(await getCursor(deps.pool, ids.connectionId, 'directory'));
  const rescanDue =
    cursor?.phase === 'changes' &&
    (Date.now() - Date.parse(cursor.fullScanAt) > config.fullRescanHours * 3_600_000 ||
      (directory.success && Date.parse(cursor.fullScanAt) < Date.parse(directory.data.rescanRequestedAt)));
  const files = new DriveFileSync(deps, drive, ctx, ids, log);
  const beat = () => heartbeat({ scope, handled: files.handled });

  let listed = false;
  if (cursor === null || rescanDue) {
    // The token first: whatever changes while we list is replayed from the change log afterwards.
    cursor = { phase: 'listing', startPageToken: await drive.startPageToken(log), startedAt: new Date().toISOString() };
    await setCursor(deps.pool, ids.connectionId, key, cursor);
  }
  if (cursor.phase === 'listing') {
    listed = true;
    // Only a listing seen whole can tell which stored documents are gone.
    const whole = cursor.listPageToken === undefined;
    const seen = new Set<string>();
    let pageToken = cursor.listPageToken;
    do {
      const page = await drive.listFiles(log, pageToken);
      for (const f of page.files) seen.add(`file:${f.id}`);
      await files.apply(page.files, [], { fanOut: false, heartbeat: beat });
      pageToken = page.nextPageToken;
      cursor = { ...cursor, listPageToken: pageToken };
      if (pageToken) await setCursor(deps.pool, ids.connectionId, key, cursor);
      beat();
    } while (pageToken);
    if (whole) {
      const stale = (await documentsInContainer(deps.pool, ids.connectionId, scope)).filter((d) => !seen.has(d.sourceId));
      const deleted = await deleteDocuments(deps.pool, ids.connectionId, stale.map((d) => d.sourceId));
      await addRunCounts(deps.pool, ids.runId, { deleted });
    }
    cursor = { phase: 'changes', pageToken: cursor.startPageToken, fullScanAt: cursor.startedAt, retry: [...files.failed].slice(0, MAX_RETRY_IDS) };
    await setCursor(deps.pool, ids.connectionId, key, cursor);
  }

  // Files that failed on an earlier run (a transient per-item error): their change entry is behind us.
  if (cursor.retry.length > 0) {
    const current: DriveFile[] = [];
    const removed: string[] = [];
    for (const id of cursor.retry) {
      const file = await drive.file(id);
      if (file) current.push(file);
      else removed.push(id);
    }
    await files.apply(current, removed, { fanOut: false, heartbeat: beat });
  }

  let changes = 0;
  let pageToken = cursor.pageToken;
  for (;;) {
    const page = await drive.changes(log, pageToken, config.changesPageSize);
    const entries = page.changes.filter((c) => c.changeType === 'file' && c.fileId);
    const current = entries.flatMap((c) => (!c.removed && c.file ? [c.file] : []));
    const removed = entries.flatMap((c) => (c.removed || !c.file ? [c.fileId ?? ''] : []));
    await files.apply(current, removed, { fanOut: true, heartbeat: beat });
    changes += page.changes.length;
    pageToken = page.nextPageToken ?? page.newStartPageToken ?? pageToken;
    cursor = { ...cursor, pageToken, retry: [...files.failed].slice(0, MAX_RETRY_IDS) };
    await setCursor(deps.pool, ids.connectionId, key, cursor);
    beat();
    if (!page.nextPageToken) break;
  }

  if (config.webhookUrl) await ensureChannel(deps, drive, ids.connectionId, scope, log, pageToken, config.webhookUrl);
  return { scope, listed, changes, files: files.handled };
}

/** Keeps one live push channel per scope; the route checks its token (workflows/drive/webhook.ts). */
async function ensureChannel(deps: ActivityDeps, drive: DriveConnector, connectionId: string, scope: DriveScope, log: LogId, pageToken: string, webhookUrl: string): Promise<void> {
  const existing = WatchCursorSchema.safeParse(await getCursor(deps.pool, connectionId, watchScope(scope)));
  if (existing.success && existing.data.expirationMs - Date.now() > CHANNEL_RENEW_MS) return;
  const channel = { id: randomUUID(), token: randomBytes(24).toString('base64url'), address: `${webhookUrl.replace(/\/+$/, '')}/${connectionId}`, expirationMs: Date.now() + CHANNEL_TTL_MS };
  const answer = await drive.watch(log, pageToken, channel);
  await setCursor(deps.pool, connectionId, watchScope(scope), { id: channel.id, token: channel.token, resourceId: answer.resourceId, expirationMs: answer.expirationMs });
}
