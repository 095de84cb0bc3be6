/**
 * The tool server: runs INSIDE the confinement (bubblewrap or Landlock, + seccomp: see confinement.ts)
 * with the sandbox as its working directory and whole useful view. Reads JSON lines `{id, tool, args}` on stdin and
 * answers `{id, ok: true, result}` or `{id, ok: false, error: {code, message}}` on stdout, one
 * request at a time. Self-contained on purpose (only node: imports): it is bind-mounted alone.
 *
 * It trusts nothing it is asked: names must be generated names (`doc-001.txt`), files are opened
 * with O_NOFOLLOW|O_NONBLOCK and served only if they are regular files with one link; grep is a
 * literal substring search (no regular expressions, so no catastrophic backtracking).
 */
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { chmodSync, closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, truncateSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { setPriority } from 'node:os';
import { createInterface } from 'node:readline';

/** The only file names ever served; materialize.ts generates exactly these. */
export const GENERATED_NAME = /^doc-[0-9]{3,6}\.txt$/;
/** Largest slice one `read` returns, in UTF-16 code units. */
export const MAX_READ_CHARS = 65_536;
/** Most hits one `grep` returns, and its default. */
export const MAX_GREP_HITS = 200;
export const DEFAULT_GREP_HITS = 50;
/** Longest grep pattern, in characters. */
export const MAX_PATTERN_CHARS = 256;
/** Characters of a matching line returned around the match. */
export const HIT_CONTEXT_CHARS = 240;
/** Largest file served; bigger ones are refused rather than loaded under the memory limit. */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;
/** The first line the server writes, so the runner knows it started inside the confinement. */
export const HELLO = 'astry-tool-server/1';

export type ToolErrorCode = 'NOT_FOUND' | 'TOO_LARGE' | 'BAD_REQUEST';

export class ToolError extends Error {
  readonly code: ToolErrorCode;
  constructor(code: ToolErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/** True for names this server may open: generated ones only (no '/', '..', NUL, or anything else). */
export function isGeneratedName(name: unknown): name is string {
  return typeof name === 'string' && GENERATED_NAME.test(name);
}

/** The text of one document, or NOT_FOUND for anything that is not a plain single-link regular file. */
export function readDocument(dir: string, name: string): string {
  if (!isGeneratedName(name)) throw new ToolError('NOT_FOUND', 'no such file');
  let fd: number;
  try {
    fd = openSync(`${dir}/${name}`, OPEN_FLAGS);
  } catch {
    // ELOOP for a planted symlink, ENOENT, EACCES: all look the same from outside.
    throw new ToolError('NOT_FOUND', `no such file: ${name}`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.nlink !== 1) throw new ToolError('NOT_FOUND', `no such file: ${name}`);
    if (stat.size > MAX_FILE_BYTES) throw new ToolError('TOO_LARGE', `${name} is larger than ${MAX_FILE_BYTES} bytes`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Generated names of the plain files in `dir`, sorted, with their sizes. */
export function listDocuments(dir: string): { name: string; sizeBytes: number }[] {
  const files: { name: string; sizeBytes: number }[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!isGeneratedName(name)) continue;
    const stat = lstatSync(`${dir}/${name}`);
    if (stat.isFile() && stat.nlink === 1) files.push({ name, sizeBytes: stat.size });
  }
  return files;
}

function integerArg(value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new ToolError('BAD_REQUEST', 'expected an integer');
  return Math.min(Math.max(value, min), max);
}

/** A slice of a document by UTF-16 offset and length; never ends inside a surrogate pair. */
export function readSlice(dir: string, args: Record<string, unknown>): { name: string; offset: number; text: string; truncated: boolean } {
  const { name } = args;
  if (!isGeneratedName(name)) throw new ToolError('NOT_FOUND', 'no such file');
  const content = readDocument(dir, name);
  const offset = integerArg(args.offset, 0, 0, Number.MAX_SAFE_INTEGER);
  const length = integerArg(args.length, MAX_READ_CHARS, 1, MAX_READ_CHARS);
  let end = Math.min(offset + length, content.length);
  const last = content.charCodeAt(end - 1);
  if (end < content.length && end - 1 > offset && last >= 0xd800 && last <= 0xdbff) end -= 1;
  const text = offset >= content.length ? '' : content.slice(offset, end);
  return { name, offset, text, truncated: offset + text.length < content.length };
}

/** Literal substring search over every document; lines are 1-based, text is a window around the match. */
export function grepDocuments(dir: string, args: Record<string, unknown>): { name: string; line: number; text: string }[] {
  const { pattern } = args;
  if (typeof pattern !== 'string' || pattern.length === 0) throw new ToolError('BAD_REQUEST', 'pattern must be a non-empty string');
  if (pattern.length > MAX_PATTERN_CHARS) throw new ToolError('TOO_LARGE', `pattern longer than ${MAX_PATTERN_CHARS} characters`);
  const maxHits = integerArg(args.maxHits, DEFAULT_GREP_HITS, 1, MAX_GREP_HITS);
  const ignoreCase = args.ignoreCase === true;
  const needle = ignoreCase ? pattern.toLowerCase() : pattern;
  const hits: { name: string; line: number; text: string }[] = [];
  for (const { name } of listDocuments(dir)) {
    const lines = readDocument(dir, name).split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] ?? '';
      const at = (ignoreCase ? line.toLowerCase() : line).indexOf(needle);
      if (at < 0) continue;
      const start = Math.max(0, Math.min(at - HIT_CONTEXT_CHARS / 4, line.length - HIT_CONTEXT_CHARS));
      hits.push({ name, line: i + 1, text: line.slice(start, start + HIT_CONTEXT_CHARS) });
      if (hits.length >= maxHits) return hits;
    }
  }
  return hits;
}

function errnoOf(err: unknown): string {
  // os.setPriority throws a SystemError whose errno name is in `info`.
  if (err instanceof Error && 'info' in err && typeof err.info === 'object' && err.info !== null && 'code' in err.info && typeof err.info.code === 'string') return err.info.code;
  if (err instanceof Error && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Attacks tried from inside, for the isolation tests and the self-test only: the runner enables this
 * tool with a command-line flag that nothing the model sends can set. Each reports what happened.
 */
async function probe(args: Record<string, unknown>): Promise<unknown> {
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
  const attempt = async (fn: () => unknown): Promise<string> => {
    try {
      return String(await fn());
    } catch (err) {
      return errnoOf(err);
    }
  };
  switch (args.kind) {
    case 'tcp':
      return attempt(() => new Promise((resolve, reject) => {
        const socket = connect({ host: str(args.host), port: num(args.port), timeout: 2000 });
        socket.once('connect', () => { socket.destroy(); resolve('connected'); });
        socket.once('timeout', () => { socket.destroy(); resolve('TIMEOUT'); });
        socket.once('error', reject);
      }));
    case 'udp':
      return attempt(() => new Promise((resolve, reject) => {
        const socket = createSocket('udp4');
        socket.once('error', (err) => { socket.close(); reject(err); });
        socket.send('probe', num(args.port), str(args.host), (err) => {
          socket.close();
          if (err) reject(err); else resolve('sent');
        });
      }));
    case 'unix':
      // A path, or '\0name' for an abstract socket.
      return attempt(() => new Promise((resolve, reject) => {
        const socket = connect({ path: str(args.path) });
        socket.once('connect', () => { socket.destroy(); resolve('connected'); });
        socket.once('error', reject);
      }));
    case 'dns':
      return attempt(async () => `resolved ${(await lookup(str(args.host))).address}`);
    case 'readFile':
      return attempt(() => `read ${readFileSync(str(args.path)).length} bytes`);
    case 'readSome': {
      // Reads a bounded prefix: for device files such as /dev/zero.
      return attempt(() => {
        const fd = openSync(str(args.path), constants.O_RDONLY);
        try {
          const buf = Buffer.alloc(num(args.bytes));
          return `read ${readSyncAll(fd, buf)} bytes`;
        } finally {
          closeSync(fd);
        }
      });
    }
    case 'readdir':
      return attempt(() => `listed ${readdirSync(str(args.path)).join(',')}`);
    case 'write':
      return attempt(() => { writeFileSync(str(args.path), 'probe'); return 'wrote'; });
    case 'truncate':
      return attempt(() => { truncateSync(str(args.path), 0); return 'truncated'; });
    case 'openTruncate':
      // O_TRUNC with read-only access still truncates.
      return attempt(() => { closeSync(openSync(str(args.path), constants.O_RDONLY | constants.O_TRUNC)); return 'truncated'; });
    case 'chmod':
      return attempt(() => { chmodSync(str(args.path), num(args.mode)); return 'changed'; });
    case 'signal':
      return attempt(() => { process.kill(num(args.pid), num(args.signal)); return 'signalled'; });
    case 'renice':
      return attempt(() => { setPriority(num(args.pid), 19); return 'reniced'; });
    case 'spawn':
      return attempt(() => {
        const result = spawnSync(str(args.path), ['-e', 'process.exit(7)'], { timeout: 2000 });
        if (result.error) throw result.error;
        return `spawned, exit ${result.status}`;
      });
    case 'alloc':
      return attempt(() => {
        const keep: Buffer[] = [];
        for (let left = num(args.bytes); left > 0; left -= 16 << 20) keep.push(Buffer.allocUnsafeSlow(Math.min(left, 16 << 20)));
        return `allocated ${keep.reduce((n, b) => n + b.length, 0)} bytes`;
      });
    case 'env':
      return {
        env: { ...process.env },
        selfEnviron: await attempt(() => readFileSync('/proc/self/environ', 'latin1')),
        initEnviron: await attempt(() => readFileSync('/proc/1/environ', 'latin1')),
      };
    case 'fds':
      return readdirSync('/proc/self/fd').map((fd) => {
        try {
          return { fd: Number(fd), target: readlinkSync(`/proc/self/fd/${fd}`) };
        } catch (err) {
          return { fd: Number(fd), target: errnoOf(err) };
        }
      });
    case 'openFds': {
      // What each open descriptor is, without /proc (Landlock hides it).
      const open: { fd: number; dev: number; ino: number; kind: string }[] = [];
      for (let fd = 0; fd < 1024; fd++) {
        try {
          const stat = fstatSync(fd);
          const kind = stat.isFile() ? 'file' : stat.isDirectory() ? 'dir' : stat.isSocket() ? 'socket' : stat.isFIFO() ? 'fifo' : stat.isCharacterDevice() ? 'char' : 'other';
          open.push({ fd, dev: stat.dev, ino: stat.ino, kind });
        } catch {
          // not open
        }
      }
      return open;
    }
    case 'spin': {
      const until = Date.now() + num(args.ms);
      while (Date.now() < until);
      return 'spun';
    }
    default:
      throw new ToolError('BAD_REQUEST', 'unknown probe');
  }
}

function readSyncAll(fd: number, buf: Buffer): number {
  let total = 0;
  while (total < buf.length) {
    const n = readSync(fd, buf, total, buf.length - total, null);
    if (n === 0) break;
    total += n;
  }
  return total;
}

/** Serves one request; every failure is an error response, never a crash. */
export async function handle(dir: string, line: string, allowProbe: boolean): Promise<string> {
  let id: unknown = null;
  try {
    const request: unknown = JSON.parse(line);
    if (typeof request !== 'object' || request === null || Array.isArray(request)) throw new ToolError('BAD_REQUEST', 'request must be an object');
    const fields: Record<string, unknown> = Object.fromEntries(Object.entries(request));
    id = typeof fields.id === 'number' && Number.isSafeInteger(fields.id) ? fields.id : null;
    if (id === null) throw new ToolError('BAD_REQUEST', 'id must be an integer');
    const args: Record<string, unknown> = typeof fields.args === 'object' && fields.args !== null ? Object.fromEntries(Object.entries(fields.args)) : {};
    let result: unknown;
    switch (fields.tool) {
      case 'list':
        result = listDocuments(dir);
        break;
      case 'read':
        result = readSlice(dir, args);
        break;
      case 'grep':
        result = grepDocuments(dir, args);
        break;
      case 'probe':
        if (!allowProbe) throw new ToolError('BAD_REQUEST', 'unknown tool');
        result = await probe(args);
        break;
      default:
        throw new ToolError('BAD_REQUEST', 'unknown tool');
    }
    return JSON.stringify({ id, ok: true, result });
  } catch (err) {
    const code: ToolErrorCode = err instanceof ToolError ? err.code : 'BAD_REQUEST';
    const message = err instanceof ToolError ? err.message : 'request failed';
    return JSON.stringify({ id, ok: false, error: { code, message } });
  }
}

async function main(): Promise<void> {
  const allowProbe = process.argv.includes('--allow-probe');
  const dir = process.cwd();
  process.stdout.write(`${JSON.stringify({ hello: HELLO })}\n`);
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (line.trim() === '') continue;
    process.stdout.write(`${await handle(dir, line, allowProbe)}\n`);
  }
}

if (import.meta.main) await main();
