/**
 * Incremental sync of one document library from its delta feed. Each page is stored (documents,
 * ACLs, deletions, descendants recomputed) before its nextLink — and at the end the deltaLink — is
 * committed, so a crash resumes at the first page not stored. Why recompute descendants: with
 * `deltashowsharingchanges`, Graph reports the folder whose sharing changed (or that moved), never
 * the children that inherit from it.
 */
import { z } from 'zod';
import { itemAcl, type AclContext } from '../../connectors/graph/acl.ts';
import type { GraphConnector } from '../../connectors/graph/connector.ts';
import { itemSubjects } from '../../connectors/graph/identities.ts';
import type { DriveItem } from '../../connectors/graph/schemas.ts';
import type { Grant, ItemError, SourceDocument } from '../../connectors/types.ts';
import { AstryError, isAstryError } from '../../core/errors.ts';
import { deleteDocuments, findDocuments, replaceGrants } from '../../db/documents.ts';
import { inTransaction } from '../../db/pool.ts';
import { ensurePrincipals, principalKey } from '../../db/principals.ts';
import { addRunCounts, getCursor, recordErrors, setCursor } from '../../db/runs.ts';
import { aclHash, ingestBatch, itemError } from '../../pipeline/ingest.ts';
import type { ActivityDeps } from '../activities/deps.ts';
import type { GraphDriveRef, GraphDriveResult } from './types.ts';

/** Committed per drive after the documents it covers are stored. */
const CursorSchema = z.object({
  /** End of the last complete enumeration: where the next run starts. */
  deltaLink: z.string().optional(),
  /** nextLink of an enumeration in progress (committed after each stored page). */
  resume: z.string().optional(),
  mode: z.enum(['full', 'incremental', 'resync']).optional(),
  /** Folder id -> parent folder id (null for the root): the tree delta never sends again. */
  folders: z.record(z.string(), z.string().nullable()).default({}),
  /**
   * Every file stored under this cursor recorded its subjects (provenance). A cursor without it was
   * written before files had subjects, and delta never reports an unchanged file again: the drive is
   * enumerated once more (as after a 410: content skipped by version, permissions re-read) to backfill.
   */
  subjects: z.literal(true).optional(),
});
type DriveCursor = z.infer<typeof CursorSchema>;
type Mode = 'full' | 'incremental' | 'resync';

export const driveScope = (driveId: string): string => `drive:${driveId}`;
export const itemSourceId = (driveId: string, itemId: string): string => `item:${driveId}:${itemId}`;
/** Container of a file: its parent folder (so a folder's subtree is a set of containers). */
export const folderContainer = (driveId: string, folderId: string): string => `${driveId}:${folderId}`;

export interface DriveSyncContext {
  deps: ActivityDeps & { graphConcurrency?: number };
  graph: GraphConnector;
  ids: { workspaceId: string; connectionId: string; runId: string };
  acl: AclContext;
  heartbeat: (detail: unknown) => void;
}

/** Runs `work` over `items` with at most `limit` in flight, results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  });
  await Promise.all(lanes);
  return results;
}

/** Every folder in the subtrees of `roots` (roots included), by the parent map. */
function subtree(folders: Readonly<Record<string, string | null>>, roots: readonly string[]): Set<string> {
  const children = new Map<string, string[]>();
  for (const [id, parent] of Object.entries(folders)) if (parent !== null) children.set(parent, [...(children.get(parent) ?? []), id]);
  const out = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    const id = stack.pop() as string;
    if (out.has(id)) continue;
    out.add(id);
    stack.push(...(children.get(id) ?? []));
  }
  return out;
}

async function storedInFolders(c: DriveSyncContext, driveId: string, folderIds: Iterable<string>): Promise<string[]> {
  const containers = [...folderIds].map((f) => folderContainer(driveId, f));
  if (containers.length === 0) return [];
  const { rows } = await c.deps.pool.query<{ source_id: string }>(
    `SELECT source_id FROM documents WHERE connection_id = $1 AND container_id = ANY($2::text[])`,
    [c.ids.connectionId, containers],
  );
  return rows.map((r) => r.source_id);
}

/** The ACL of a file from its permissions, or null when the item is gone. */
async function aclOf(c: DriveSyncContext, driveId: string, itemId: string): Promise<Grant[] | null> {
  const permissions = await c.graph.permissions(driveId, itemId);
  return permissions === null ? null : itemAcl(permissions, c.acl);
}

function toDocument(c: DriveSyncContext, drive: GraphDriveRef, item: DriveItem, acl: Grant[]): SourceDocument {
  const name = item.name ?? item.id;
  return {
    sourceId: itemSourceId(drive.driveId, item.id),
    containerId: folderContainer(drive.driveId, item.parentReference?.id ?? 'root'),
    kind: 'graph_file',
    title: name,
    url: item.webUrl ?? '',
    // cTag changes with content only; a rename or move changes eTag but needs no re-embedding.
    contentVersion: item.cTag ?? item.eTag ?? item.lastModifiedDateTime ?? item.id,
    updatedAt: new Date(item.lastModifiedDateTime ?? 0),
    acl,
    // Creator and last modifier: an erasure finds the file through them, and suppression refuses it afterwards.
    subjects: itemSubjects(item, c.acl.identities),
    content: {
      type: 'file', fileName: name, mimeType: item.file?.mimeType ?? 'application/octet-stream', sizeBytes: item.size ?? 0,
      fetch: () => c.graph.download(drive.driveId, item.id),
    },
  };
}

/** Failures that pass: the page is retried rather than the item recorded as failed. */
const TRANSIENT: ReadonlySet<string> = new Set(['SOURCE_RATE_LIMITED', 'SOURCE_UNAVAILABLE', 'SOURCE_AUTH_FAILED']);

/** Expected failures of one item become its error; auth and exhausted throttling stop the run (retried from the cursor). */
function perItem(err: unknown): boolean {
  return isAstryError(err) && !isAstryError(err, 'SOURCE_AUTH_FAILED', 'SOURCE_RATE_LIMITED', 'SOURCE_UNAVAILABLE');
}

/** ACL-only updates of stored documents (no download, no embedding); returns how many changed. */
async function updateAcls(c: DriveSyncContext, updates: readonly { sourceId: string; acl: Grant[] }[]): Promise<number> {
  if (updates.length === 0) return 0;
  const stored = await findDocuments(c.deps.pool, c.ids.connectionId, updates.map((u) => u.sourceId));
  const principalIds = await ensurePrincipals(c.deps.pool, c.ids.workspaceId, updates.flatMap((u) => u.acl));
  const changed = updates.flatMap((u) => {
    const doc = stored.get(u.sourceId);
    const hash = aclHash(u);
    return doc && doc.aclHash !== hash ? [{ doc, hash, acl: u.acl }] : [];
  });
  if (changed.length === 0) return 0;
  await inTransaction(c.deps.pool, async (tx) => {
    for (const { doc, hash, acl } of changed) {
      const grants = acl.flatMap((g) => {
        const principalId = principalIds.get(principalKey(g));
        return principalId === undefined ? [] : [{ principalId, expiresAt: g.expiresAt ?? null }];
      });
      await replaceGrants(tx, doc.id, grants, hash);
    }
  });
  return changed.length;
}

interface PageOutcome {
  recomputed: number;
}

/** Stores one delta page: deletions, files (content + ACL), then descendants of changed folders. */
async function storePage(c: DriveSyncContext, drive: GraphDriveRef, items: readonly DriveItem[], mode: Mode, cursor: DriveCursor, seen: Set<string>): Promise<PageOutcome> {
  const before = { ...cursor.folders };
  const files: DriveItem[] = [];
  const deletedFiles: string[] = [];
  const deletedFolders: string[] = [];
  const changedFolders: string[] = [];
  for (const item of items) {
    const parent = item.parentReference?.id ?? null;
    if (item.deleted) {
      if (item.id in before) deletedFolders.push(item.id);
      else deletedFiles.push(itemSourceId(drive.driveId, item.id));
    } else if (item.root || item.folder) {
      const was = before[item.id];
      cursor.folders[item.id] = item.root ? null : parent;
      const moved = was !== undefined && was !== cursor.folders[item.id];
      if (mode === 'incremental' && was !== undefined && (moved || item['@microsoft.graph.sharedChanged'] !== undefined)) changedFolders.push(item.id);
    } else if (item.file) {
      files.push(item);
    }
  }

  // Deleted folders take their whole stored subtree with them (Graph usually lists the children too).
  let deleted = 0;
  if (deletedFolders.length > 0) {
    const gone = subtree(before, deletedFolders);
    deletedFiles.push(...(await storedInFolders(c, drive.driveId, gone)));
    for (const id of gone) delete cursor.folders[id];
  }
  deleted += await deleteDocuments(c.deps.pool, c.ids.connectionId, deletedFiles);

  const errors: ItemError[] = [];
  const concurrency = c.deps.graphConcurrency ?? 8;
  const batchSize = c.deps.batchSize ?? 32;
  for (let start = 0; start < files.length; start += batchSize) {
    const batch = files.slice(start, start + batchSize);
    const acls = await mapLimit(batch, concurrency, async (item) => {
      try {
        return await aclOf(c, drive.driveId, item.id);
      } catch (err) {
        if (!perItem(err)) throw err;
        errors.push(itemError(itemSourceId(drive.driveId, item.id), err));
        return undefined;
      }
    });
    const docs: SourceDocument[] = [];
    const gone: string[] = [];
    batch.forEach((item, i) => {
      const acl = acls[i];
      if (acl === null) gone.push(itemSourceId(drive.driveId, item.id));
      else if (acl !== undefined) docs.push(toDocument(c, drive, item, acl));
    });
    for (const doc of docs) seen.add(doc.sourceId);
    deleted += await deleteDocuments(c.deps.pool, c.ids.connectionId, gone);
    const result = await ingestBatch(c.deps, c.ids, docs);
    // A moved or renamed file keeps its content (no re-index) but has a new folder and URL.
    await c.deps.pool.query(
      `UPDATE documents d SET container_id = t.container, url = t.url
       FROM unnest($2::text[], $3::text[], $4::text[]) AS t(source_id, container, url)
       WHERE d.connection_id = $1 AND d.source_id = t.source_id AND (d.container_id <> t.container OR d.url <> t.url)`,
      [c.ids.connectionId, docs.map((d) => d.sourceId), docs.map((d) => d.containerId), docs.map((d) => d.url)],
    );
    await addRunCounts(c.deps.pool, c.ids.runId, result);
    // A download that failed for a passing reason must not become a lost item: the cursor would move
    // past it and delta would not report it again. Fail the attempt; it resumes at this page.
    const transient = result.errors.find((e) => TRANSIENT.has(e.code));
    if (transient) throw new AstryError('SOURCE_UNAVAILABLE', `${transient.itemId}: ${transient.message} (page retried)`);
    errors.push(...result.errors);
    // Per batch, not per page: a page of 200 files can take longer to embed than the heartbeat timeout.
    c.heartbeat({ drive: drive.driveId, stored: start + batch.length });
  }

  // Descendants of folders that moved or whose sharing changed inherit something new: re-read their permissions.
  let recomputed = 0;
  if (changedFolders.length > 0) {
    const inPage = new Set(files.map((f) => itemSourceId(drive.driveId, f.id)));
    const stale = (await storedInFolders(c, drive.driveId, subtree(cursor.folders, changedFolders))).filter((id) => !inPage.has(id));
    for (let start = 0; start < stale.length; start += 200) {
      const chunk = stale.slice(start, start + 200);
      const acls = await mapLimit(chunk, concurrency, (sourceId) => aclOf(c, drive.driveId, sourceId.slice(`item:${drive.driveId}:`.length)));
      const updates = chunk.flatMap((sourceId, i) => (acls[i] ? [{ sourceId, acl: acls[i] }] : []));
      const aclUpdated = await updateAcls(c, updates);
      const vanished = await deleteDocuments(c.deps.pool, c.ids.connectionId, chunk.filter((_, i) => acls[i] === null));
      await addRunCounts(c.deps.pool, c.ids.runId, { aclUpdated, deleted: vanished });
      recomputed += chunk.length;
      c.heartbeat({ drive: drive.driveId, recomputed });
    }
  }
  await addRunCounts(c.deps.pool, c.ids.runId, { deleted });
  await recordErrors(c.deps.pool, c.ids.runId, c.ids.connectionId, errors);
  return { recomputed };
}

/** Deletes the drive's stored documents a complete resync enumeration did not list. */
async function sweep(c: DriveSyncContext, driveId: string, seen: ReadonlySet<string>): Promise<number> {
  const prefix = `item:${driveId}:`;
  const { rows } = await c.deps.pool.query<{ source_id: string }>(
    `SELECT source_id FROM documents WHERE connection_id = $1 AND left(source_id, $3) = $2`,
    [c.ids.connectionId, prefix, prefix.length],
  );
  return deleteDocuments(c.deps.pool, c.ids.connectionId, rows.map((r) => r.source_id).filter((id) => !seen.has(id)));
}

/**
 * Syncs one drive from its committed cursor. A retried attempt (crash, throttling beyond the
 * client's retries) resumes at the committed nextLink. 410 Gone restarts the enumeration from
 * scratch and, once it completes, deletes what it did not list (converges to the source); an
 * interrupted resync starts over, because the set of items it listed is not persisted.
 */
export async function syncGraphDrive(c: DriveSyncContext, drive: GraphDriveRef): Promise<GraphDriveResult> {
  const scope = driveScope(drive.driveId);
  const parsed = CursorSchema.safeParse(await getCursor(c.deps.pool, c.ids.connectionId, scope));
  const cursor: DriveCursor = parsed.success ? parsed.data : { folders: {} };
  let mode: Mode;
  let url: string;
  const stored = cursor.deltaLink !== undefined || cursor.resume !== undefined;
  if (cursor.mode === 'resync' || (stored && !cursor.subjects)) {
    mode = 'resync';
    url = c.graph.initialDelta(drive.driveId);
    cursor.folders = {};
  } else if (cursor.resume && cursor.mode) {
    mode = cursor.mode;
    url = cursor.resume;
  } else if (cursor.deltaLink) {
    mode = 'incremental';
    url = cursor.deltaLink;
  } else {
    mode = 'full';
    url = c.graph.initialDelta(drive.driveId);
  }
  // From here on every stored page records its files' subjects.
  cursor.subjects = true;
  const result: GraphDriveResult = { driveId: drive.driveId, changes: 0, recomputed: 0, resynced: mode === 'resync' };
  const seen = new Set<string>();
  for (let pages = 0; ; pages++) {
    const page = await c.graph.delta(url);
    if (page === 'resync') {
      if (mode === 'resync' && pages > 0) throw new Error(`Graph answered 410 again during the resync of drive ${drive.driveId}`);
      mode = 'resync';
      result.resynced = true;
      url = c.graph.initialDelta(drive.driveId);
      cursor.folders = {};
      seen.clear();
      await setCursor(c.deps.pool, c.ids.connectionId, scope, { folders: {}, mode, subjects: true, ...(cursor.deltaLink ? { deltaLink: cursor.deltaLink } : {}) });
      continue;
    }
    const outcome = await storePage(c, drive, page.items, mode, cursor, seen);
    result.changes += page.items.length;
    result.recomputed += outcome.recomputed;
    if (page.nextLink) {
      url = page.nextLink;
      await setCursor(c.deps.pool, c.ids.connectionId, scope, { ...cursor, resume: url, mode });
      c.heartbeat({ drive: drive.driveId, pages: pages + 1 });
      continue;
    }
    if (!page.deltaLink) throw new Error(`Graph delta page of drive ${drive.driveId} has neither nextLink nor deltaLink`);
    if (mode === 'resync') await addRunCounts(c.deps.pool, c.ids.runId, { deleted: await sweep(c, drive.driveId, seen) });
    await setCursor(c.deps.pool, c.ids.connectionId, scope, { deltaLink: page.deltaLink, folders: cursor.folders, subjects: true });
    return result;
  }
}
