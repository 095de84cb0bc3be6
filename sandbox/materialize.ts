/**
 * Step 3 of a query: project the authorized documents into a per-request directory of real files.
 *
 * `<root>/<128-bit random hex>/` (0700) holds one file per document, `doc-001.txt`, `doc-002.txt`, …,
 * created with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0400. Titles are hostile input and never reach a
 * path. The manifest (generated name -> document id, title) lives in memory only, in
 * `Sandbox.files`: the directory holds nothing but the documents, so the confined view is exactly
 * the authorized set, and nothing on disk needs protecting from the tools.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AstryError } from '../core/errors.ts';

/** One materialized document: the manifest entry. */
export interface SandboxEntry {
  /** Generated file name inside the sandbox (`doc-001.txt`). */
  name: string;
  documentId: string;
  /** Source title: hostile input, metadata only. */
  title: string;
  /** Size of the file (UTF-8 text) in bytes. */
  sizeBytes: number;
}

/** A per-request directory of real files and its in-memory manifest. */
export interface Sandbox {
  /** Absolute path of the directory; bind-mounted read-only at /sandbox by the tool runner. */
  dir: string;
  files: SandboxEntry[];
  /** Removes the directory and everything in it, never following a link. Idempotent. */
  destroy(): Promise<void>;
}

/** A document to project: its decrypted text. */
export interface MaterializeInput {
  documentId: string;
  title: string;
  text: string;
}

/** Names of per-request directories under a root (what sweepSandboxes may remove). */
export const SANDBOX_DIR_NAME = /^[0-9a-f]{32}$/;
// Names past this would no longer match tool-server.ts's GENERATED_NAME, which refuses them.
const MAX_DOCUMENTS = 999_999;

const CREATE_FLAGS = constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_WRONLY;

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && 'code' in err && err.code === code;
}

/** `doc-001.txt` for 1; more digits past 999. */
export function generatedName(ordinal: number): string {
  return `doc-${String(ordinal).padStart(3, '0')}.txt`;
}

/**
 * The root must be a real directory owned by this user and closed to everyone else. A missing
 * root is created 0700; an existing looser one is refused, not chmod-ed (it may be shared, e.g. /tmp).
 */
async function ensureRoot(root: string): Promise<void> {
  try {
    await mkdir(root, { recursive: true, mode: 0o700 });
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err; // a file in the way: refused below
  }
  const stat = await lstat(root);
  const uid = process.getuid?.();
  if (!stat.isDirectory()) throw new AstryError('CONFIG_INVALID', `sandbox root ${root} is not a directory`);
  if (uid !== undefined && stat.uid !== uid) throw new AstryError('CONFIG_INVALID', `sandbox root ${root} is not owned by this user`);
  if ((stat.mode & 0o077) !== 0) throw new AstryError('CONFIG_INVALID', `sandbox root ${root} must be mode 0700`);
}

/** Every entry is one of ours, a regular file with one link and mode 0400; the dir itself is 0700. */
async function verify(dir: string, files: readonly SandboxEntry[]): Promise<void> {
  const dirStat = await lstat(dir);
  if (!dirStat.isDirectory() || (dirStat.mode & 0o777) !== 0o700) throw new Error(`sandbox ${dir} is not a 0700 directory`);
  const expected = new Map(files.map((f) => [f.name, f]));
  const names = await readdir(dir);
  if (names.length !== expected.size) throw new Error(`sandbox ${dir} holds ${names.length} entries, expected ${expected.size}`);
  for (const name of names) {
    const entry = expected.get(name);
    const stat = await lstat(join(dir, name));
    if (!entry || !stat.isFile() || stat.nlink !== 1 || (stat.mode & 0o777) !== 0o400 || stat.size !== entry.sizeBytes) {
      throw new Error(`sandbox entry ${JSON.stringify(name)} is not a single-link 0400 file of ours`);
    }
  }
}

/** Writes each document as a real file under a fresh per-request directory of `root`. */
export async function materialize(root: string, docs: readonly MaterializeInput[]): Promise<Sandbox> {
  if (docs.length > MAX_DOCUMENTS) throw new AstryError('TOO_LARGE', `at most ${MAX_DOCUMENTS} documents per sandbox`);
  await ensureRoot(root);
  const dir = join(root, randomBytes(16).toString('hex'));
  // mkdir never follows a final symlink and fails if the name exists; 0700 is not widened by umask.
  await mkdir(dir, { mode: 0o700 });
  const files: SandboxEntry[] = [];
  const sandbox: Sandbox = { dir, files, destroy: () => rm(dir, { recursive: true, force: true }) };
  try {
    for (const [index, doc] of docs.entries()) {
      const name = generatedName(index + 1);
      const data = Buffer.from(doc.text, 'utf8');
      const handle = await open(join(dir, name), CREATE_FLAGS, 0o400);
      try {
        await handle.writeFile(data);
      } finally {
        await handle.close();
      }
      files.push({ name, documentId: doc.documentId, title: doc.title, sizeBytes: data.length });
    }
    await verify(dir, files);
    return sandbox;
  } catch (err) {
    await sandbox.destroy();
    throw err;
  }
}

/**
 * Removes per-request directories under `root` last modified more than `olderThanMs` ago: what a
 * crashed worker left. Only names shaped like ours, only real directories; returns how many.
 */
export async function sweepSandboxes(root: string, olderThanMs: number): Promise<number> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 0;
    throw err;
  }
  const cutoff = Date.now() - olderThanMs;
  let removed = 0;
  for (const entry of entries) {
    if (!entry.isDirectory() || !SANDBOX_DIR_NAME.test(entry.name)) continue;
    const path = join(root, entry.name);
    if ((await lstat(path)).mtimeMs > cutoff) continue;
    await rm(path, { recursive: true, force: true });
    removed++;
  }
  return removed;
}
