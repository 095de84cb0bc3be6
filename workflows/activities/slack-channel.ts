import { z } from 'zod';
import type { SlackConnector } from '../../connectors/slack/connector.ts';
import { buildDocuments, historyWindowStart, referencedFileIds, threadTsOf } from '../../connectors/slack/documents.ts';
import { compareTs, tsToDate, type SlackTeam } from '../../connectors/slack/render.ts';
import type { SlackChannel, SlackMessage } from '../../connectors/slack/schemas.ts';
import type { SourceDocument } from '../../connectors/types.ts';
import { deleteDocuments, documentsInContainer } from '../../db/documents.ts';
import { addRunCounts, getCursor, recordErrors, setCursor } from '../../db/runs.ts';
import { ingestBatch } from '../../pipeline/ingest.ts';
import { suppressedUsers } from '../../erasure/suppression.ts';
import type { ChannelResult } from '../types.ts';
import type { ActivityDeps } from './deps.ts';

/** Committed per channel after all of a run's documents for it are stored. */
const CursorSchema = z.object({ latestTs: z.string(), fullScanAt: z.string() });
type ChannelCursor = z.infer<typeof CursorSchema>;

/** Heartbeat details: units whose newest message is at or before `doneThrough` are stored. */
export const ChannelProgressSchema = z.object({ doneThrough: z.string() });
export type ChannelProgress = z.infer<typeof ChannelProgressSchema>;

/** A thread or a day: the units a channel is re-indexed in, ordered by their newest message. */
interface Unit {
  newest: string;
  thread?: SlackMessage;
  day?: SourceDocument;
}

function daysBefore(ts: string, days: number): string {
  return String(Number(ts) - days * 86_400);
}

/** A thread parent's newest reply ts (Slack's latest_reply), or its own ts. */
function threadNewest(parent: SlackMessage): string {
  return parent.latest_reply ?? parent.ts;
}

async function loadNames(deps: ActivityDeps, connectionId: string): Promise<Map<string, string>> {
  const { rows } = await deps.pool.query<{ source_user_id: string; display_name: string }>(
    `SELECT source_user_id, display_name FROM source_identities WHERE connection_id = $1`,
    [connectionId],
  );
  return new Map(rows.map((r) => [r.source_user_id, r.display_name]));
}

/** The ts that identifies a stored document's place in history (thread parent ts, or its day's midnight). */
function identityTs(sourceId: string): string | null {
  const [kind, , key] = sourceId.split(':');
  if (kind === 'thread' && key) return key;
  if (kind === 'day' && key) return String(Date.parse(`${key}T00:00:00Z`) / 1000);
  return null;
}

/**
 * Incremental sync of one channel. Reads history since the cursor (less a lookback window, whole
 * UTC days), re-reads only threads whose newest reply is newer than what is stored, rebuilds the
 * day documents of the window (unchanged ones are skipped by hash), deletes documents of the
 * window that are gone, and commits the cursor last. A retried attempt skips the units its last
 * heartbeat reported stored.
 */
export async function syncSlackChannel(
  deps: ActivityDeps,
  slack: SlackConnector,
  ids: { workspaceId: string; connectionId: string; runId: string },
  team: SlackTeam,
  channel: SlackChannel,
  heartbeat: (progress: ChannelProgress) => void,
  resumed: unknown,
): Promise<ChannelResult> {
  const scope = `channel:${channel.id}`;
  const stored = CursorSchema.safeParse(await getCursor(deps.pool, ids.connectionId, scope));
  const cursor: ChannelCursor | null = stored.success ? stored.data : null;
  const rescanMs = (deps.fullRescanHours ?? 24) * 3_600_000;
  const full = cursor === null || Date.now() - Date.parse(cursor.fullScanAt) > rescanMs;
  const oldest = full || !cursor ? undefined : historyWindowStart(daysBefore(cursor.latestTs, deps.threadLookbackDays ?? 30));
  const progress = ChannelProgressSchema.safeParse(resumed);
  let doneThrough = progress.success ? progress.data.doneThrough : '0';

  const messages: SlackMessage[] = [];
  for await (const page of slack.history(channel.id, oldest === undefined ? {} : { oldest })) {
    messages.push(...page);
    heartbeat({ doneThrough });
  }

  const ctx = { team, names: await loadNames(deps, ids.connectionId), suppressed: await suppressedUsers(deps.pool, deps.keys, ids) };
  const existing = new Map((await documentsInContainer(deps.pool, ids.connectionId, channel.id)).map((d) => [d.sourceId, d]));
  const parents = new Map(messages.map((m) => [m.ts, m]));
  const threads = threadTsOf(messages).flatMap((ts) => {
    const parent = parents.get(ts);
    if (!parent) return [];
    const known = existing.get(`thread:${channel.id}:${ts}`);
    // Only threads that are new or have a reply newer than the stored version cost a replies call.
    const changed = !known || tsToDate(threadNewest(parent)) > known.sourceUpdatedAt;
    return changed ? [parent] : [];
  });
  const days = buildDocuments(channel, messages, new Map(), ctx).filter((d) => d.kind === 'slack_day');
  const units: Unit[] = [
    ...threads.map((thread) => ({ newest: threadNewest(thread), thread })),
    ...days.map((day) => ({ newest: String(day.updatedAt.getTime() / 1000), day })),
  ]
    .filter((u) => compareTs(u.newest, doneThrough) > 0)
    .sort((a, b) => compareTs(a.newest, b.newest));

  const fileIds = new Set(referencedFileIds(messages));
  let documents = 0;
  const batchSize = deps.batchSize ?? 32;
  for (let start = 0; start < units.length; start += batchSize) {
    const batch = units.slice(start, start + batchSize);
    const threadParents = batch.flatMap((u) => (u.thread ? [u.thread] : []));
    const replies = await slack.collectReplies(channel.id, threadParents.map((t) => t.ts));
    for (const list of replies.byThreadTs.values()) for (const id of referencedFileIds(list)) fileIds.add(id);
    const docs = [
      ...buildDocuments(channel, threadParents, replies.byThreadTs, ctx).filter((d) => d.kind === 'slack_thread'),
      ...batch.flatMap((u) => (u.day ? [u.day] : [])),
    ];
    const result = await ingestBatch(deps, ids, docs);
    await addRunCounts(deps.pool, ids.runId, result);
    await recordErrors(deps.pool, ids.runId, ids.connectionId, [...replies.errors, ...result.errors]);
    documents += docs.length;
    doneThrough = batch.at(-1)?.newest ?? doneThrough;
    heartbeat({ doneThrough });
  }

  // Documents of the scanned window that the source no longer has (deleted messages or threads).
  const present = new Set([...days.map((d) => d.sourceId), ...threadTsOf(messages).map((ts) => `thread:${channel.id}:${ts}`)]);
  const gone = [...existing.values()].filter((d) => {
    const at = identityTs(d.sourceId);
    return at !== null && (oldest === undefined || compareTs(at, oldest) > 0) && !present.has(d.sourceId);
  });
  const deleted = await deleteDocuments(deps.pool, ids.connectionId, gone.map((d) => d.sourceId));
  await addRunCounts(deps.pool, ids.runId, { deleted });

  const latestTs = messages.reduce((max, m) => (compareTs(m.ts, max) > 0 ? m.ts : max), cursor?.latestTs ?? '0');
  const next: ChannelCursor = { latestTs, fullScanAt: full ? new Date().toISOString() : (cursor?.fullScanAt ?? new Date().toISOString()) };
  await setCursor(deps.pool, ids.connectionId, scope, next);
  return { channelId: channel.id, documents, fileIds: [...fileIds] };
}
