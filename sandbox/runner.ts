/**
 * Step 4 of a query: the model's tools (list, read, grep) served by sandbox/tool-server.ts in a
 * separate process whose whole filesystem view is the sandbox, with no network and an empty
 * environment. Walls, each enough on its own for the attack it names:
 *   - bubblewrap: new user, pid, net, ipc, uts and cgroup namespaces; a read-only root holding only
 *     the node binary, the C libraries it links, the tool server and the sandbox (read-only at
 *     /sandbox); no /etc, /home, /root, /tmp, /var, /work; own /proc and a minimal /dev.
 *   - seccomp (sandbox/seccomp.ts): no sockets but AF_UNIX, no new processes, no mounts or namespaces.
 *   - rlimits (prlimit): address space, CPU seconds, 64 descriptors, no core dumps.
 *   - an empty environment (spawn env {} and --clearenv) and no inherited descriptors.
 * If bubblewrap, user namespaces or prlimit are missing, start() throws CONFINEMENT_UNAVAILABLE:
 * there is no unconfined fallback.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { z } from 'zod';
import { AstryError } from '../core/errors.ts';
import { buildSeccompProgram } from './seccomp.ts';
import { GENERATED_NAME, HELLO, MAX_PATTERN_CHARS, MAX_READ_CHARS } from './tool-server.ts';
import { toolServerScript } from './tool-server-js.ts';
import type { GrepHit, ReadResult, SandboxFile, SandboxTools } from './tools.ts';

export const BWRAP_PATH = '/usr/bin/bwrap';
export const PRLIMIT_PATH = '/usr/bin/prlimit';
/** Where the sandbox directory appears inside the confinement. */
export const SANDBOX_MOUNT = '/sandbox';
const INNER_NODE = '/astry/node';
// .mjs: unambiguously an ES module, with no package.json in the view (types stripped on the host).
const INNER_SERVER = '/astry/tool-server.mjs';
/** What node links (libc, libstdc++, libm, libgcc_s, ld.so); Debian's merged /usr layout. */
const LIBRARY_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib64'];
/**
 * Address space node maps before serving anything: 1518 MiB measured on Node 24.21 with the flags
 * below, almost all of it reservations (PROT_NONE), not memory. RLIMIT_AS is this plus
 * `memoryBytes`, so `memoryBytes` is what the server can really allocate.
 */
export const NODE_RESERVED_ADDRESS_SPACE = 1536 * 1024 * 1024;
/** Unprivileged ids inside the user namespace (mapped to this process's ids outside). */
const INNER_ID = '65534';

/** Limits and switches of one tool runner; every field has a production default. */
export interface ToolRunnerOptions {
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

/** Ways to weaken the confinement, for tests that prove a wall matters. Never used in production. */
export interface ConfinementOverrides {
  /** Keep the host network namespace (drops --unshare-net). */
  shareNetwork?: boolean;
  /** Run without the seccomp filter. */
  withoutSeccomp?: boolean;
  /** Extra host paths bind-mounted read-only at the same path. */
  extraReadOnlyBinds?: string[];
}

/** What the confined command needs to know. */
export interface ConfinementSpec {
  sandboxDir: string;
  memoryBytes: number;
  cpuSeconds: number;
  allowProbe: boolean;
  /** Descriptor number (in the child) bwrap reads the seccomp program from; null for none. */
  seccompFd: number | null;
  overrides?: ConfinementOverrides;
}

/** The bwrap arguments (after the bwrap path) that confine the tool server. */
export function bwrapArgs(spec: ConfinementSpec): string[] {
  const overrides = spec.overrides ?? {};
  const nodePath = realpathSync(process.execPath);
  return [
    '--unshare-user', '--unshare-ipc', '--unshare-pid', '--unshare-uts', '--unshare-cgroup',
    ...(overrides.shareNetwork ? [] : ['--unshare-net']),
    '--disable-userns',
    '--uid', INNER_ID, '--gid', INNER_ID,
    '--hostname', 'sandbox',
    '--die-with-parent', '--new-session', '--clearenv', '--cap-drop', 'ALL',
    ...LIBRARY_DIRS.flatMap((dir) => ['--ro-bind', dir, dir]),
    '--symlink', 'usr/lib', '/lib',
    '--symlink', 'usr/lib64', '/lib64',
    '--ro-bind', nodePath, INNER_NODE,
    '--ro-bind', toolServerScript(), INNER_SERVER,
    '--proc', '/proc',
    '--dev', '/dev',
    '--ro-bind', spec.sandboxDir, SANDBOX_MOUNT,
    ...(overrides.extraReadOnlyBinds ?? []).flatMap((path) => ['--ro-bind', path, path]),
    // bwrap's root and /dev are writable tmpfs until remounted.
    '--remount-ro', '/dev',
    '--remount-ro', '/',
    '--chdir', SANDBOX_MOUNT,
    ...(spec.seccompFd === null || overrides.withoutSeccomp ? [] : ['--seccomp', String(spec.seccompFd)]),
    '--',
    INNER_NODE,
    // Nothing inside needs WebAssembly (types are stripped on the host); if anything did, its memory
    // would otherwise reserve all the address space the limit leaves (GiBs): a 128 MiB maximum and
    // no trap-handler guard regions.
    '--disable-wasm-trap-handler', '--wasm-max-mem-pages=2048',
    '--no-addons', '--disallow-code-generation-from-strings',
    INNER_SERVER,
    ...(spec.allowProbe ? ['--allow-probe'] : []),
  ];
}

/** The whole command: prlimit sets the rlimits, then execs bwrap. */
export function confinementCommand(spec: ConfinementSpec): { file: string; args: string[] } {
  const args = [
    `--as=${NODE_RESERVED_ADDRESS_SPACE + spec.memoryBytes}`,
    `--cpu=${spec.cpuSeconds}`,
    '--nofile=64',
    // A core dump would hold decrypted documents, written wherever the host's core_pattern says.
    '--core=0',
    '--', BWRAP_PATH, ...bwrapArgs(spec),
  ];
  return { file: PRLIMIT_PATH, args };
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
    for (const path of [BWRAP_PATH, PRLIMIT_PATH, ...LIBRARY_DIRS]) {
      if (!existsSync(path)) throw new AstryError('CONFINEMENT_UNAVAILABLE', `${path} is missing`);
    }
    if (!lstatSync(sandbox.dir).isDirectory()) throw new AstryError('CONFINEMENT_UNAVAILABLE', 'sandbox dir is not a directory');
    for (const file of sandbox.files) {
      if (!GENERATED_NAME.test(file.name)) throw new Error(`not a generated sandbox name: ${JSON.stringify(file.name)}`);
    }
    const limits = limitsOf(options);
    const allowProbe = options.allowProbe ?? false;
    const command = confinementCommand({
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
      // detached: its own process group, so a stuck bwrap can still be killed with everything under it.
      child = spawn(command.file, command.args, { env: {}, stdio: childStdio(devNull), detached: true });
    } finally {
      closeSync(devNull);
    }
    const runner = new ToolRunner(child, new Map(sandbox.files.map((f) => [f.name, f.title])), limits, allowProbe);
    try {
      const seccomp = child.stdio[SEEDED_FD];
      if (!seccomp || !('end' in seccomp)) throw new AstryError('CONFINEMENT_UNAVAILABLE', 'no pipe for the seccomp program');
      seccomp.on('error', () => undefined); // bwrap gone before reading it: reported by 'close'
      seccomp.end(buildSeccompProgram());
      await runner.#waitForHello(limits.startTimeoutMs);
    } catch (err) {
      await runner.close();
      throw err instanceof AstryError ? err : new AstryError('CONFINEMENT_UNAVAILABLE', String(err), { cause: err });
    }
    return runner;
  }

  /** Host pid of the confined command (prlimit, then bwrap); for tests. */
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
   * Kills the namespace's init (bwrap's child): the kernel then kills everything inside, and bwrap
   * reaps it and exits, which leaves no zombie to a host init that may not reap (containers). The
   * whole process group is killed if that has not ended it within a second.
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
