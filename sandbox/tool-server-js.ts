/**
 * The tool server as plain JavaScript, for the confined node to run without type stripping: node
 * strips types in WebAssembly, which costs ~150 ms of every runner's start (measured in
 * docs/query-benchmarks.md). The types are stripped here once per process, from the source file
 * itself, so the code that runs can never drift from the code in the repository.
 *
 * The file lives in a fresh 0700 directory of this process, is written exclusively (never through an
 * existing file or link) and read-only, and is removed when the process exits; so is the empty
 * OpenSSL configuration node is given under Landlock.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('./tool-server.ts', import.meta.url));

let privateDir: string | undefined;
let compiled: string | undefined;
let opensslConfig: string | undefined;

/** Strips the types of `source` (positions kept), without node's one-time ExperimentalWarning. */
export function stripTypes(source: string): string {
  const emitWarning = process.emitWarning;
  process.emitWarning = () => undefined;
  try {
    return stripTypeScriptTypes(source, { mode: 'strip' });
  } finally {
    process.emitWarning = emitWarning;
  }
}

/** Writes `name` in this process's private directory (created on first use), exclusively and read-only. */
function writePrivate(name: string, content: string): string {
  if (privateDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'astry-tool-server-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    privateDir = dir;
  }
  const path = join(privateDir, name);
  writeFileSync(path, content, { flag: 'wx', mode: 0o400 });
  return path;
}

/** Path of the stripped tool server (created on first use). */
export function toolServerScript(): string {
  compiled ??= writePrivate('tool-server.mjs', stripTypes(readFileSync(SOURCE, 'utf8')));
  return compiled;
}

/**
 * Path of an empty OpenSSL configuration (created on first use), for node's `--openssl-config`
 * under Landlock: node reads /etc/ssl/openssl.cnf at start and tolerates its absence (as inside
 * bubblewrap) but not a refusal, and nothing inside uses OpenSSL.
 */
export function emptyOpensslConfig(): string {
  opensslConfig ??= writePrivate('openssl.cnf', '');
  return opensslConfig;
}
