/**
 * The tools a model may use, as the confined tool runner serves them. Everything here names files
 * by their generated sandbox name; a name outside the manifest is simply not found.
 */

/** One materialized file, as `list` reports it. */
export interface SandboxFile {
  /** Generated name inside the sandbox (never derived from a source title). */
  name: string;
  /** Document title from the source: hostile input, for display only. */
  title: string;
  sizeBytes: number;
}

/** One `grep` match. */
export interface GrepHit {
  name: string;
  line: number;
  text: string;
}

/** A slice of a file returned by `read`. */
export interface ReadResult {
  name: string;
  offset: number;
  text: string;
  /** True when the file continues past this slice. */
  truncated: boolean;
}

/** The model-facing tool surface; implemented by the confined ToolRunner (sandbox/runner.ts). */
export interface SandboxTools {
  list(): Promise<SandboxFile[]>;
  read(name: string, opts?: { offset?: number; length?: number }): Promise<ReadResult>;
  grep(pattern: string, opts?: { maxHits?: number; ignoreCase?: boolean }): Promise<GrepHit[]>;
}
