/**
 * The tool server as plain JavaScript, for the confined node to run without type stripping: node
 * strips types in WebAssembly, which costs ~150 ms of every runner's start (measured in
 * docs/query-benchmarks.md). The types are stripped here once per process, from the source file
 * itself, so the code that runs can never drift from the code in the repository.
 *
 * The file lives in a fresh 0700 directory of this process, is written exclusively (never through an
 * existing file or link) and read-only, and is removed when the process exits.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('./tool-server.ts', import.meta.url));

let compiled: string | undefined;

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

/** Path of the stripped tool server (created on first use). */
export function toolServerScript(): string {
  if (compiled !== undefined) return compiled;
  const dir = mkdtempSync(join(tmpdir(), 'astry-tool-server-'));
  const path = join(dir, 'tool-server.mjs');
  writeFileSync(path, stripTypes(readFileSync(SOURCE, 'utf8')), { flag: 'wx', mode: 0o400 });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  compiled = path;
  return path;
}
