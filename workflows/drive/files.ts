/**
 * Turns Drive files into stored documents for one scope: permissions read per file (the source's
 * truth, inherited grants included), ACL mapped, content fetched only when its version changed,
 * deletions for trashed, removed, unreadable or nobody-can-read files, and folder changes fanned out
 * to every descendant (Drive reports a move or a sharing change only on the folder itself).
 */
import { fileAcl, type AclContext } from '../../connectors/drive/acl.ts';
import type { DriveConnector, LogId } from '../../connectors/drive/connector.ts';
import { FOLDER_MIME, fileDocument, fileSubjects, readMode, subjectEmails } from '../../connectors/drive/documents.ts';
import type { DriveFile } from '../../connectors/drive/schemas.ts';
import type { ItemError, SourceDocument } from '../../connectors/types.ts';
import { AstryError, isAstryError } from '../../core/errors.ts';
import { deleteDocuments } from '../../db/documents.ts';
import { sourceUserIdsByEmail } from '../../db/principals.ts';
import { addRunCounts, recordErrors } from '../../db/runs.ts';
import { ingestBatch, itemError } from '../../pipeline/ingest.ts';
import type { ActivityDeps } from '../activities/deps.ts';

/** Permission reads in flight at once: Drive answers them in ~100 ms, so a few overlap well. */
const PERMISSION_CONCURRENCY = 8;

interface FolderInfo {
  parent: string | undefined;
  limited: boolean;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    // Once one lane fails, the others stop taking items: nothing runs on behind a failed activity.
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await work(items[i] as T);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  });
  await Promise.all(lanes);
  return out;
}

/** Failures that repeat until the file itself changes (which brings a change entry): not retried. */
const PERMANENT = new Set(['TOO_LARGE', 'UNSUPPORTED_TYPE', 'EXTRACT_FAILED']);

/** Failures that hit every item alike (auth, exhausted back-off): they fail the activity. */
const SOURCE_WIDE = new Set(['SOURCE_AUTH_FAILED', 'SOURCE_RATE_LIMITED', 'SOURCE_UNAVAILABLE']);

/** Is an error confined to one item? */
function perItem(err: unknown): boolean {
  return isAstryError(err) && !SOURCE_WIDE.has(err.code);
}

export class DriveFileSync {
  readonly #deps: ActivityDeps;
  readonly #drive: DriveConnector;
  readonly #ctx: AclContext;
  readonly #ids: { workspaceId: string; connectionId: string; runId: string };
  readonly #log: LogId;
  readonly #folders = new Map<string, Promise<FolderInfo>>();
  /** Lowercased email -> directory user id (null: not in the directory), for files' subjects. */
  readonly #directoryIds = new Map<string, string | null>();
  /** Ids whose processing failed with a per-item error: retried on the next run. */
  readonly failed = new Set<string>();
  /** Files handled (written, updated, unchanged or deleted). */
  handled = 0;

  constructor(deps: ActivityDeps, drive: DriveConnector, ctx: AclContext, ids: { workspaceId: string; connectionId: string; runId: string }, log: LogId) {
    this.#deps = deps;
    this.#drive = drive;
    this.#ctx = ctx;
    this.#ids = ids;
    this.#log = log;
  }

  /** Remembers a folder's state as seen now (from a listing or a change entry). */
  noteFolder(file: DriveFile): void {
    if (file.mimeType === FOLDER_MIME) this.#folders.set(file.id, Promise.resolve({ parent: file.parents[0], limited: file.inheritedPermissionsDisabled }));
  }

  /** True when the file or an ancestor below the shared drive root has inheritedPermissionsDisabled. */
  async #limited(file: DriveFile): Promise<boolean> {
    if (!file.driveId) return false;
    if (file.inheritedPermissionsDisabled) return true;
    let id = file.parents[0];
    for (let depth = 0; id && id !== file.driveId && depth < 100; depth++) {
      const folderId = id;
      let pending = this.#folders.get(folderId);
      if (!pending) {
        // The promise is cached: concurrent files of one folder cost one files.get.
        pending = this.#drive.file(folderId).then((f) => ({ parent: f?.parents[0], limited: f?.inheritedPermissionsDisabled ?? false }));
        pending.catch(() => this.#folders.delete(folderId));
        this.#folders.set(folderId, pending);
      }
      const info = await pending;
      if (info.limited) return true;
      id = info.parent;
    }
    return false;
  }

  /**
   * Learns the directory ids of the addresses `files` name (owners, last modifiers). Why a lookup:
   * Drive's `User` has no directory id; the directory this run's principals step stored has both.
   * One query per batch with unseen addresses; most files name the same few people.
   */
  async #resolveSubjects(files: readonly DriveFile[]): Promise<void> {
    const unseen = [...new Set(files.flatMap((f) => subjectEmails(f)))].filter((e) => !this.#directoryIds.has(e));
    if (unseen.length === 0) return;
    const found = await sourceUserIdsByEmail(this.#deps.pool, this.#ids.connectionId, unseen);
    for (const email of unseen) this.#directoryIds.set(email, found.get(email) ?? null);
  }

  /** The document of a file, or null when no one may read it (the caller deletes it). */
  async #document(file: DriveFile): Promise<SourceDocument | null> {
    const permissions = await this.#drive.permissions(file);
    const acl = fileAcl(this.#ctx, file, permissions, await this.#limited(file));
    if (acl.length === 0) return null;
    const subjects = fileSubjects(file, (email) => this.#directoryIds.get(email) ?? undefined);
    return fileDocument(file, acl, subjects, () => this.#drive.content(file));
  }

  /**
   * Stores the current state of `files` (deleting trashed ones) and deletes `removedIds`. Folders
   * are not documents: with `fanOut`, each changed folder's descendants are re-read, since their
   * inherited grants may have changed with it.
   */
  async apply(files: readonly DriveFile[], removedIds: readonly string[], opts: { fanOut: boolean; heartbeat: () => void }): Promise<void> {
    const gone = new Set(removedIds.map((id) => `file:${id}`));
    const live: DriveFile[] = [];
    const folders: DriveFile[] = [];
    for (const file of files) {
      this.noteFolder(file);
      if (file.trashed) gone.add(`file:${file.id}`);
      else if (file.mimeType === FOLDER_MIME) folders.push(file);
      else if (readMode(file) !== null) live.push(file);
    }
    await this.#store(live, gone, opts.heartbeat);
    if (!opts.fanOut) return;
    const seen = new Set(files.map((f) => f.id));
    for (const folder of folders) await this.#descendants(folder, seen, opts.heartbeat);
  }

  async #descendants(folder: DriveFile, seen: Set<string>, heartbeat: () => void): Promise<void> {
    const queue = [folder.id];
    while (queue.length > 0) {
      const id = queue.shift() ?? '';
      const children = (await this.#drive.children(id, this.#log)).filter((c) => !seen.has(c.id));
      for (const child of children) {
        seen.add(child.id);
        this.noteFolder(child);
        if (child.mimeType === FOLDER_MIME) queue.push(child.id);
      }
      await this.#store(children.filter((c) => c.mimeType !== FOLDER_MIME && readMode(c) !== null), new Set(), heartbeat);
    }
  }

  async #store(files: readonly DriveFile[], gone: Set<string>, heartbeat: () => void): Promise<void> {
    const batchSize = this.#deps.batchSize ?? 32;
    for (let start = 0; start < Math.max(files.length, 1); start += batchSize) {
      const batch = files.slice(start, start + batchSize);
      const errors: ItemError[] = [];
      await this.#resolveSubjects(batch);
      const docs = (
        await mapLimit(batch, PERMISSION_CONCURRENCY, async (file) => {
          try {
            const doc = await this.#document(file);
            if (doc === null) gone.add(`file:${file.id}`);
            return doc;
          } catch (err) {
            if (isAstryError(err, 'NOT_FOUND')) gone.add(`file:${file.id}`);
            else if (perItem(err)) {
              const error = itemError(`file:${file.id}`, err);
              errors.push(error);
              if (!PERMANENT.has(error.code)) this.failed.add(file.id);
            } else throw err;
            return null;
          }
        })
      ).filter((d): d is SourceDocument => d !== null);
      const deleted = await deleteDocuments(this.#deps.pool, this.#ids.connectionId, [...gone]);
      gone.clear();
      const result = await ingestBatch(this.#deps, this.#ids, docs);
      // A content fetch that ran out of back-off is the source's state, not the file's: fail the
      // activity so Temporal retries it and the uncommitted page is read again.
      const sourceWide = result.errors.find((e) => SOURCE_WIDE.has(e.code));
      if (sourceWide) throw new AstryError(sourceWide.code === 'SOURCE_AUTH_FAILED' ? 'SOURCE_AUTH_FAILED' : 'SOURCE_RATE_LIMITED', `${sourceWide.itemId}: ${sourceWide.message}`);
      for (const e of result.errors) if (!PERMANENT.has(e.code)) this.failed.add(e.itemId.replace(/^file:/, ''));
      await addRunCounts(this.#deps.pool, this.#ids.runId, { ...result, deleted });
      await recordErrors(this.#deps.pool, this.#ids.runId, this.#ids.connectionId, [...errors, ...result.errors]);
      this.handled += batch.length + deleted;
      heartbeat();
    }
  }
}
