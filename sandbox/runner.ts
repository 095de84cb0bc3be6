/**
 * Step 4 of a query: the model's tools (list, read, grep) served by sandbox/tool-server.ts in a
 * separate process whose whole filesystem view is the sandbox, with no network and an empty
 * environment. Walls, each enough on its own for the attack it names:
 *   - bubblewrap namespaces, or Landlock where user namespaces are forbidden (sandbox/confinement.ts):
 *     nothing readable but node, the C libraries it links, the tool server and the sandbox
 *     (read-only); no network.
 *   - seccomp (sandbox/seccomp.ts): no network sockets (under Landlock none at all), no new
 *     processes, no mounts or namespaces; under Landlock also nothing aimed at other processes.
 *   - rlimits (prlimit): address space, CPU seconds, 64 descriptors, no core dumps.
 *   - an empty environment and no inherited descriptors.
 * If the chosen confinement cannot be set up, start() throws CONFINEMENT_UNAVAILABLE: there is no
 * unconfined fallback.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { z } from 'zod';
import { AstryError } from '../core/errors.ts';
import { confinementCommand, confinementPrerequisites, type Confinement, type ConfinementOverrides } from './confinement.ts';
import { buildSeccompProgram } from './seccomp.ts';
import { GENERATED_NAME, HELLO, MAX_PATTERN_CHARS, MAX_READ_CHARS } from './tool-server.ts';
import type { GrepHit, ReadResult, SandboxFile, SandboxTools } from './tools.ts';

/** Limits and switches of one tool runner; every field has a production default. */
export interface ToolRunnerOptions {
  /**
   * How the server is confined (default 'bwrap'); `chooseConfinement()` (sandbox/selftest.ts) picks
   * the one that works on this machine.
   */
  confinement?: Confinement;
  /** Memory the tool server may map on top of NODE_RESERVED_ADDRESS_SPACE, in bytes (default 256 MiB). */
  memoryBytes?: number;
  /** CPU time for the runner's whole life, in seconds (default 10); SIGXCPU kills it past that. */
  cpuSeconds?: number;
  /** Time one tool call may take, in ms (default 5000); past it the runner is killed. */
  callTimeoutMs?: number;
  /** Time from spawn to the server's hello, in ms (default 10000). */
  startTimeoutMs?: number;
  /** Largest response line, in bytes (default 4 MiB); a larger one kills the runner. */
  maxOutputBytes?: number;
  /** Enables the hidden `probe` tool. Isolation tests and the self-test only; never for a model. */
  allowProbe?: boolean;
  /** Tests only: removes one wall, to show that each test fails without the wall it tests. */
  unsafeTestOverrides?: ConfinementOverrides;
}

/**
 * Descriptors of this process that a child would inherit (no O_CLOEXEC): Node opens everything
 * close-on-exec, but a worker may have inherited strays from whatever started it, and neither
 * libuv nor bwrap closes them.
 */
export function inheritableFds(): number[] {
  const fds: number[] = [];
  for (const entry of readdirSync('/proc/self/fdinfo')) {
    const fd = Number(entry);
    if (!Number.isInteger(fd) || fd < 3) continue;
    let info: string;
    try {
      info = readFileSync(`/proc/self/fdinfo/${entry}`, 'utf8');
    } catch {
      continue; // closed meanwhile (e.g. the descriptor used to read the directory)
    }
    const flags = /^flags:\s*([0-7]+)$/m.exec(info)?.[1];
    if (flags === undefined || (parseInt(flags, 8) & 0o2000000) === 0) fds.push(fd);
  }
  return fds;
}

const SEEDED_FD = 3;

/**
 * stdio for the child: 0-2 pipes, 3 the seccomp program, and /dev/null over every inheritable
 * descriptor, so a stray can never reach the sandbox under its own number.
 */
function childStdio(devNull: number): StdioOptions {
  const stdio: ('pipe' | 'ignore' | number)[] = ['pipe', 'pipe', 'pipe', 'pipe'];
  for (const fd of inheritableFds()) {
    if (fd <= SEEDED_FD) continue;
    while (stdio.length < fd) stdio.push('ignore');
    stdio[fd] = devNull;
  }
  return stdio;
}

const ToolErrorSchema = z.object({ code: z.enum(['NOT_FOUND', 'TOO_LARGE', 'BAD_REQUEST']), message: z.string() });
const ResponseSchema = z.union([
  z.object({ id: z.number().int(), ok: z.literal(true), result: z.unknown() }),
  z.object({ id: z.number().int(), ok: z.literal(false), error: ToolErrorSchema }),
]);
const HelloSchema = z.object({ hello: z.literal(HELLO) });
const ListSchema = z.array(z.object({ name: z.string(), sizeBytes: z.number().int().nonnegative() }));
const ReadSchema = z.object({ name: z.string(), offset: z.number().int().nonnegative(), text: z.string(), truncated: z.boolean() });
const GrepSchema = z.array(z.object({ name: z.string(), line: z.number().int().positive(), text: z.string() }));

interface Pending {
  id: number;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

interface Limits {
  memoryBytes: number;
  cpuSeconds: number;
  callTimeoutMs: number;
  startTimeoutMs: number;
  maxOutputBytes: number;
}

/** The options' limits with their defaults, each checked to be a positive integer. */
function limitsOf(options: ToolRunnerOptions): Limits {
  const limits: Limits = {
    memoryBytes: options.memoryBytes ?? 256 * 1024 * 1024,
    cpuSeconds: options.cpuSeconds ?? 10,
    callTimeoutMs: options.callTimeoutMs ?? 5000,
    startTimeoutMs: options.startTimeoutMs ?? 10_000,
    maxOutputBytes: options.maxOutputBytes ?? 4 * 1024 * 1024,
  };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new AstryError('CONFIG_INVALID', `tool runner ${name} must be a positive integer`);
  }
  return limits;
}

function clampInteger(value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || !Number.isFinite(value)) return fallback;
  return Math.min(Math.max(Math.floor(value), min), max);
}

/** The confined tool server as SandboxTools; one per request, closed in the request's `finally`. */
export class ToolRunner implements SandboxTools {
  readonly #child: ChildProcess;
  readonly #stdin: Writable;
  readonly #titles: ReadonlyMap<string, string>;
  readonly #callTimeoutMs: number;
  readonly #maxOutputBytes: number;
  readonly #allowProbe: boolean;
  readonly #exited: Promise<void>;
  #parts: Buffer[] = [];
  #partsBytes = 0;
  #stderr = '';
  #hello: Pending | undefined;
  #pending: Pending | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #failure: AstryError | undefined;
  #stopping = false;
  #nextId = 1;

  private constructor(child: ChildProcess, titles: ReadonlyMap<string, string>, limits: Limits, allowProbe: boolean) {
    this.#child = child;
    if (!child.stdin || !child.stdout || !child.stderr) throw new Error('tool runner spawned without pipes');
    this.#stdin = child.stdin;
    this.#titles = titles;
    this.#callTimeoutMs = limits.callTimeoutMs;
    this.#maxOutputBytes = limits.maxOutputBytes;
    this.#allowProbe = allowProbe;
    this.#stdin.on('error', () => undefined); // EPIPE after a death is reported by 'close'
    child.stdout.on('data', (chunk: Buffer) => this.#onData(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-4096);
    });
    this.#exited = new Promise((resolve) => {
      child.once('error', (err) => {
        this.#fail(new AstryError('CONFINEMENT_UNAVAILABLE', `cannot start the tool runner: ${err.message}`, { cause: err }));
        resolve();
      });
      child.once('close', (code, signal) => {
        const how = signal ? `signal ${signal}` : `code ${code}`;
        this.#fail(new AstryError('CONFINEMENT_UNAVAILABLE', `tool runner exited (${how}): ${this.#stderr.trim().slice(-500)}`));
        resolve();
      });
    });
  }

  /** Starts a confined tool server over `sandbox` and waits until it answers from inside. */
  static async start(sandbox: { dir: string; files: readonly { name: string; title: string }[] }, options: ToolRunnerOptions = {}): Promise<ToolRunner> {
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      throw new AstryError('CONFINEMENT_UNAVAILABLE', `no confinement for ${process.platform}/${process.arch} (needs linux/x64)`);
    }
    const confinement = options.confinement ?? 'bwrap';
    for (const path of confinementPrerequisites(confinement)) {
      if (!existsSync(path)) throw new AstryError('CONFINEMENT_UNAVAILABLE', `${path} is missing (scripts/setup.sh installs or builds it)`);
    }
    if (!lstatSync(sandbox.dir).isDirectory()) throw new AstryError('CONFINEMENT_UNAVAILABLE', 'sandbox dir is not a directory');
    for (const file of sandbox.files) {
      if (!GENERATED_NAME.test(file.name)) throw new Error(`not a generated sandbox name: ${JSON.stringify(file.name)}`);
    }
    const limits = limitsOf(options);
    const allowProbe = options.allowProbe ?? false;
    const command = confinementCommand({
      confinement,
      sandboxDir: sandbox.dir,
      memoryBytes: limits.memoryBytes,
      cpuSeconds: limits.cpuSeconds,
      allowProbe,
      seccompFd: SEEDED_FD,
      ...(options.unsafeTestOverrides ? { overrides: options.unsafeTestOverrides } : {}),
    });
    const devNull = openSync('/dev/null', 'r');
    let child: ChildProcess;
    try {
      // detached: its own process group (and session), so everything under it can be killed at once.
      child = spawn(command.file, command.args, { env: {}, stdio: childStdio(devNull), detached: true });
    } finally {
      closeSync(devNull);
    }
    const runner = new ToolRunner(child, new Map(sandbox.files.map((f) => [f.name, f.title])), limits, allowProbe);
    try {
      const seccomp = child.stdio[SEEDED_FD];
      if (!seccomp || !('end' in seccomp)) throw new AstryError('CONFINEMENT_UNAVAILABLE', 'no pipe for the seccomp program');
      seccomp.on('error', () => undefined); // gone before reading it: reported by 'close'
      seccomp.end(buildSeccompProgram(confinement));
      await runner.#waitForHello(limits.startTimeoutMs);
    } catch (err) {
      await runner.close();
      throw err instanceof AstryError ? err : new AstryError('CONFINEMENT_UNAVAILABLE', String(err), { cause: err });
    }
    return runner;
  }

  /**
   * Host pid of the confined command, for tests: prlimit execs bwrap, which forks the namespace's
   * init; or prlimit execs the Landlock launcher, which execs node (this pid is the server).
   */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  async list(): Promise<SandboxFile[]> {
    const served = new Map(ListSchema.parse(await this.#call('list', {})).map((f) => [f.name, f.sizeBytes]));
    // The manifest decides what exists; the confined view decides the size.
    return [...this.#titles].flatMap(([name, title]) => {
      const sizeBytes = served.get(name);
      return sizeBytes === undefined ? [] : [{ name, title, sizeBytes }];
    });
  }

  async read(name: string, opts: { offset?: number; length?: number } = {}): Promise<ReadResult> {
    if (!this.#titles.has(name)) throw new AstryError('NOT_FOUND', 'no such file');
    const offset = clampInteger(opts.offset, 0, 0, Number.MAX_SAFE_INTEGER);
    const length = clampInteger(opts.length, MAX_READ_CHARS, 1, MAX_READ_CHARS);
    const result = ReadSchema.parse(await this.#call('read', { name, offset, length }));
    if (result.name !== name || result.offset !== offset || result.text.length > length) throw new Error('tool server answered another read');
    return result;
  }

  async grep(pattern: string, opts: { maxHits?: number; ignoreCase?: boolean } = {}): Promise<GrepHit[]> {
    if (pattern.length > MAX_PATTERN_CHARS) throw new AstryError('TOO_LARGE', `pattern longer than ${MAX_PATTERN_CHARS} characters`);
    const hits = GrepSchema.parse(await this.#call('grep', { pattern, maxHits: opts.maxHits, ignoreCase: opts.ignoreCase ?? false }));
    return hits.filter((hit) => this.#titles.has(hit.name));
  }

  /** Runs an attack from inside (see tool-server.ts); only with `allowProbe`. */
  async probe(args: Record<string, unknown>): Promise<unknown> {
    if (!this.#allowProbe) throw new Error('probe is disabled');
    return this.#call('probe', args);
  }

  /** Kills the confined process group and waits for it to go; idempotent. */
  async close(): Promise<void> {
    this.#fail(new AstryError('CONFINEMENT_UNAVAILABLE', 'tool runner closed'));
    await this.#exited;
  }

  #waitForHello(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new AstryError('CONFINEMENT_UNAVAILABLE', `tool runner did not start within ${timeoutMs} ms`)), timeoutMs);
      this.#hello = {
        id: 0,
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      };
    });
  }

  /** One request at a time, so each call's timeout measures that call alone. */
  #call(tool: string, args: Record<string, unknown>): Promise<unknown> {
    const run = this.#queue.then(() => this.#send(tool, args));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #send(tool: string, args: Record<string, unknown>): Promise<unknown> {
    if (this.#failure) return Promise.reject(new AstryError('CONFINEMENT_UNAVAILABLE', `tool runner is stopped: ${this.#failure.message}`));
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      const timer = setTimeout(() => this.#fail(new AstryError('TIMEOUT', `tool call ${tool} took over ${this.#callTimeoutMs} ms; tool runner stopped`)), this.#callTimeoutMs);
      this.#pending = {
        id,
        resolve: (value) => { clearTimeout(timer); resolve(value); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      };
      this.#stdin.write(`${JSON.stringify({ id, tool, args })}\n`);
    });
  }

  #onData(chunk: Buffer): void {
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
      if (this.#partsBytes + newline - start > this.#maxOutputBytes) return this.#oversize();
      const line = Buffer.concat([...this.#parts, chunk.subarray(start, newline)]).toString('utf8');
      this.#parts = [];
      this.#partsBytes = 0;
      start = newline + 1;
      this.#onLine(line);
      if (this.#failure) return;
    }
    if (start < chunk.length) {
      this.#parts.push(chunk.subarray(start));
      this.#partsBytes += chunk.length - start;
      if (this.#partsBytes > this.#maxOutputBytes) this.#oversize();
    }
  }

  #oversize(): void {
    this.#fail(new AstryError('TOO_LARGE', `tool output exceeded ${this.#maxOutputBytes} bytes; tool runner stopped`));
  }

  #onLine(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      return this.#fail(new AstryError('CONFINEMENT_UNAVAILABLE', 'tool server wrote a line that is not JSON'));
    }
    const hello = this.#hello;
    if (hello) {
      this.#hello = undefined;
      if (HelloSchema.safeParse(message).success) return hello.resolve(undefined);
      return this.#fail(new AstryError('CONFINEMENT_UNAVAILABLE', 'tool server did not greet as expected'));
    }
    const response = ResponseSchema.safeParse(message);
    const pending = this.#pending;
    if (!response.success || !pending || response.data.id !== pending.id) {
      return this.#fail(new AstryError('CONFINEMENT_UNAVAILABLE', 'tool server answered out of protocol'));
    }
    this.#pending = undefined;
    if (response.data.ok) return pending.resolve(response.data.result);
    const { code, message: text } = response.data.error;
    pending.reject(code === 'BAD_REQUEST' ? new Error(`tool server refused the request: ${text}`) : new AstryError(code, text));
  }

  /** Records the first failure, stops the process tree, and fails whatever is waiting. */
  #fail(err: AstryError): void {
    this.#failure ??= err;
    this.#stop();
    for (const waiting of [this.#hello, this.#pending]) waiting?.reject(err);
    this.#hello = undefined;
    this.#pending = undefined;
  }

  /**
   * bwrap: kills the namespace's init (bwrap's child): the kernel then kills everything inside, and
   * bwrap reaps it and exits, which leaves no zombie to a host init that may not reap (containers).
   * The whole process group is killed if that has not ended it within a second, and at once when
   * there is no such child (Landlock: the pid is the server itself, and it cannot fork).
   */
  #stop(): void {
    const pid = this.#child.pid;
    if (this.#stopping || pid === undefined || this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#stopping = true;
    const kill = (target: number): void => {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    let inner: number[] = [];
    try {
      inner = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter((p) => p !== '').map(Number);
    } catch {
      // no such file: fall through to the group
    }
    inner.forEach(kill);
    const group = setTimeout(() => kill(-pid), inner.length > 0 ? 1000 : 0);
    group.unref();
    this.#child.once('exit', () => clearTimeout(group));
  }
}
