import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson } from './canonical.ts';
import { AuditEntrySchema, type AuditEntry } from './entry.ts';
import { fsyncDir } from './fsutil.ts';

/**
 * The local write-ahead spool used while Postgres is unreachable: JSON lines, one file per live
 * AuditLog, named `<pid>-<uuid>.jsonl`. Only its writer appends to a file. A file whose writer is
 * gone (dead pid, or this pid but no live owner: a restarted container, a closed log) is an orphan
 * that any drainer may claim by renaming it to its own pid; rename is atomic, so one claimant wins.
 * The directory must be on local disk of one host (pids mean nothing across hosts).
 */

/** Spool files owned by live Spools in this process (their own file and files they claimed). */
const held = new Set<string>();
const SPOOL_NAME = /^(\d+)-([0-9a-f-]{36})\.jsonl$/;

/** Complete lines read from a spool file. */
export interface SpoolChunk {
  entries: AuditEntry[];
  /** Byte offset just after the last complete line. */
  next: number;
  /** Bytes after the last newline of a file nobody writes any more: a torn write, ignored. */
  tornBytes: number;
}

export class Spool {
  readonly #dir: string;
  #file: FileHandle | undefined;
  #path: string | undefined;
  #pending: { line: string; resolve: () => void; reject: (err: unknown) => void }[] = [];
  #lock: Promise<unknown> = Promise.resolve();

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Path of this process's own spool file while it holds entries not yet drained. */
  get ownPath(): string | undefined {
    return this.#path;
  }

  /** Appends `entry` durably (write + fsync; the directory too when the file is new). Concurrent writes share one fsync. */
  write(entry: AuditEntry): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ line: `${canonicalJson(entry)}\n`, resolve, reject });
      if (this.#pending.length === 1) void this.#exclusive(() => this.#flush());
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    try {
      const file = await this.#open();
      await file.appendFile(batch.map((b) => b.line).join(''));
      await file.sync();
      for (const b of batch) b.resolve();
    } catch (err) {
      // The file may now end in a partial line: never append to it again. It becomes an orphan,
      // drained like a crashed process's spool (its torn tail ignored).
      await this.#retire();
      for (const b of batch) b.reject(err);
    }
  }

  async #open(): Promise<FileHandle> {
    if (this.#file) return this.#file;
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const path = join(this.#dir, `${process.pid}-${randomUUID()}.jsonl`);
    held.add(path);
    this.#path = path;
    this.#file = await open(path, 'ax', 0o600);
    await fsyncDir(this.#dir);
    return this.#file;
  }

  async #retire(): Promise<void> {
    const file = this.#file;
    if (this.#path) held.delete(this.#path);
    this.#file = undefined;
    this.#path = undefined;
    await file?.close().catch(() => undefined);
  }

  /**
   * Removes the own file `path` if everything up to `drainedTo` is all it holds (checked while no write can
   * run). Returns false when more lines arrived meanwhile.
   */
  async releaseOwn(path: string, drainedTo: number): Promise<boolean> {
    return this.#exclusive(async () => {
      // Retired since the drain began (a failed write): it is an orphan now, claimed like any other.
      if (path !== this.#path || !this.#file) return true;
      if ((await this.#file.stat()).size > drainedTo) return false;
      await unlink(path);
      await this.#retire();
      return true;
    });
  }

  /** Claims every orphaned spool file in the directory; returns their new paths, oldest first. */
  async claimOrphans(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const claimed: { path: string; mtime: number }[] = [];
    for (const name of names) {
      const match = SPOOL_NAME.exec(name);
      const from = join(this.#dir, name);
      if (!match || held.has(from)) continue;
      const pid = Number(match[1]);
      if (pid !== process.pid && isAlive(pid)) continue;
      const to = join(this.#dir, `${process.pid}-${match[2]}.jsonl`);
      if (held.has(to)) continue;
      held.add(to); // before any await: two Spools of this process never claim the same file
      try {
        await rename(from, to);
        claimed.push({ path: to, mtime: (await stat(to)).mtimeMs });
      } catch (err) {
        held.delete(to);
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // another process claimed it first
      }
    }
    return claimed.sort((a, b) => a.mtime - b.mtime).map((c) => c.path);
  }

  /** Forgets and deletes a claimed file once drained. */
  async removeClaimed(path: string): Promise<void> {
    await unlink(path);
    held.delete(path);
  }

  /** Releases claimed files not yet drained, so that another drainer may take them. */
  release(paths: Iterable<string>): void {
    for (const path of paths) held.delete(path);
  }

  /** Waits for pending writes and closes the own file, leaving it (if not drained) as an orphan for the next start. */
  async close(): Promise<void> {
    await this.#exclusive(() => this.#retire());
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(work);
    this.#lock = run.catch(() => undefined);
    return run;
  }
}

/**
 * Reads the complete lines of `path` from byte `from`. Bytes after the last newline are either a
 * write in progress (`final` false: left for the next read) or, in a file nobody writes any more,
 * a torn write (reported in tornBytes). A malformed complete line is corruption, not a torn write:
 * it throws, and the file is kept.
 */
export async function readSpool(path: string, from: number, final: boolean): Promise<SpoolChunk> {
  const file = await open(path, 'r');
  let data: Buffer;
  try {
    const { size } = await file.stat();
    data = Buffer.alloc(Math.max(0, size - from));
    let read = 0;
    while (read < data.length) {
      const { bytesRead } = await file.read(data, read, data.length - read, from + read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    data = data.subarray(0, read);
  } finally {
    await file.close();
  }
  const end = data.lastIndexOf(0x0a) + 1;
  const lines = data.subarray(0, end).toString('utf8').split('\n').slice(0, -1);
  const entries = lines.map((line, i) => {
    const parsed = AuditEntrySchema.safeParse(parseJson(line));
    if (!parsed.success) throw new Error(`audit spool ${path}: line ${i + 1} after byte ${from} is corrupt; file kept`);
    return parsed.data;
  });
  return { entries, next: from + end, tornBytes: final ? data.length - end : 0 };
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
