/**
 * The command that confines the tool server, in either of two ways (chosen by
 * `chooseConfinement()`, sandbox/selftest.ts):
 *   - 'bwrap': prlimit, then bubblewrap: new user, pid, net, ipc, uts and cgroup namespaces and a
 *     read-only root holding only node, the C libraries, the tool server and the sandbox; then
 *     seccomp. Needs unprivileged user namespaces.
 *   - 'landlock': prlimit, then sandbox/landlock/launcher.c: no capabilities, a Landlock ruleset
 *     that grants reading only those same paths (no /proc, /dev, /etc, /tmp) and no TCP, then the
 *     stricter Landlock seccomp program (no socket at all, no signal or scheduling change to another
 *     process, no metadata change). For containers whose seccomp profile forbids user namespaces.
 * Both keep the rlimits, the empty environment and the node flags.
 */
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { emptyOpensslConfig, toolServerScript } from './tool-server-js.ts';

/** How the tool server is confined (see above). */
export type Confinement = 'bwrap' | 'landlock';

export const BWRAP_PATH = '/usr/bin/bwrap';
export const PRLIMIT_PATH = '/usr/bin/prlimit';
/** Where the sandbox directory appears inside bubblewrap (under Landlock it keeps its host path). */
export const SANDBOX_MOUNT = '/sandbox';
const INNER_NODE = '/astry/node';
// .mjs: unambiguously an ES module, with no package.json in the view (types stripped on the host).
const INNER_SERVER = '/astry/tool-server.mjs';
/** What node links (libc, libstdc++, libm, libgcc_s, ld.so); Debian's merged /usr layout. */
export const LIBRARY_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib64'];
/**
 * Address space node maps before serving anything: 1518 MiB measured on Node 24.21 with the flags
 * below, almost all of it reservations (PROT_NONE), not memory. RLIMIT_AS is this plus
 * `memoryBytes`, so `memoryBytes` is what the server can really allocate.
 */
export const NODE_RESERVED_ADDRESS_SPACE = 1536 * 1024 * 1024;
/** Unprivileged ids inside the user namespace (mapped to this process's ids outside). */
const INNER_ID = '65534';
/**
 * Nothing inside needs WebAssembly (types are stripped on the host); if anything did, its memory
 * would otherwise reserve all the address space the limit leaves (GiBs): a 128 MiB maximum and no
 * trap-handler guard regions.
 */
const NODE_FLAGS = ['--disable-wasm-trap-handler', '--wasm-max-mem-pages=2048', '--no-addons', '--disallow-code-generation-from-strings'];

const LAUNCHER_SOURCE = fileURLToPath(new URL('./landlock/launcher.c', import.meta.url));
/** First 12 hex digits of the launcher source's SHA-256: part of the built binary's name, so a stale build is never run. */
export const LAUNCHER_HASH = createHash('sha256').update(readFileSync(LAUNCHER_SOURCE)).digest('hex').slice(0, 12);

/** Where scripts/build-landlock.sh (run by scripts/setup.sh) puts the launcher built from this checkout's source. */
export function landlockLauncherPath(cacheDir = process.env.ASTRY_CACHE || join(homedir(), '.cache', 'astry')): string {
  return join(cacheDir, 'bin', `astry-landlock-${LAUNCHER_HASH}`);
}

/** Ways to weaken the confinement, for tests that prove a wall matters. Never used in production. */
export interface ConfinementOverrides {
  /** bwrap: keep the host network namespace (drops --unshare-net). */
  shareNetwork?: boolean;
  /** Run without the seccomp filter. */
  withoutSeccomp?: boolean;
  /** Extra host paths readable inside: bwrap binds them read-only at the same path; Landlock grants reading them. */
  extraReadOnlyBinds?: string[];
  /** landlock: no Landlock domain at all (no filesystem rules, TCP rule, scopes or ptrace restriction). */
  withoutLandlock?: boolean;
  /** landlock: a domain that handles no filesystem right (TCP and scopes as usual). */
  withoutLandlockFs?: boolean;
  /** landlock: act as if the kernel offered at most this Landlock ABI (0: none). */
  landlockAbi?: number;
}

/** What the confined command needs to know. */
export interface ConfinementSpec {
  confinement: Confinement;
  sandboxDir: string;
  memoryBytes: number;
  cpuSeconds: number;
  allowProbe: boolean;
  /** Descriptor number (in the child) bwrap or the launcher reads the seccomp program from; null for none. */
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
    INNER_NODE, ...NODE_FLAGS, INNER_SERVER,
    ...(spec.allowProbe ? ['--allow-probe'] : []),
  ];
}

/**
 * The launcher arguments (after its path): the same files readable as bwrap binds, at their host
 * paths. `--parent` lets it check that the worker did not die before it asked to die with it.
 */
export function landlockArgs(spec: ConfinementSpec): string[] {
  const overrides = spec.overrides ?? {};
  const nodePath = realpathSync(process.execPath);
  return [
    '--parent', String(process.pid),
    '--ro', spec.sandboxDir,
    '--ro', toolServerScript(),
    '--ro', emptyOpensslConfig(),
    ...(overrides.extraReadOnlyBinds ?? []).flatMap((path) => ['--ro', path]),
    '--rx', nodePath,
    ...LIBRARY_DIRS.flatMap((dir) => ['--rx', dir]),
    '--chdir', spec.sandboxDir,
    ...(spec.seccompFd === null || overrides.withoutSeccomp ? ['--unsafe-no-seccomp'] : ['--seccomp-fd', String(spec.seccompFd)]),
    ...(overrides.withoutLandlock ? ['--unsafe-no-landlock'] : []),
    ...(overrides.withoutLandlockFs ? ['--unsafe-no-landlock-fs'] : []),
    ...(overrides.landlockAbi === undefined ? [] : ['--unsafe-abi', String(overrides.landlockAbi)]),
    '--',
    nodePath, `--openssl-config=${emptyOpensslConfig()}`, ...NODE_FLAGS, toolServerScript(),
    ...(spec.allowProbe ? ['--allow-probe'] : []),
  ];
}

/** Host paths the confinement needs; start() refuses with CONFINEMENT_UNAVAILABLE if one is missing. */
export function confinementPrerequisites(confinement: Confinement): string[] {
  return [PRLIMIT_PATH, confinement === 'bwrap' ? BWRAP_PATH : landlockLauncherPath(), ...LIBRARY_DIRS];
}

/** The whole command: prlimit sets the rlimits, then execs bwrap or the Landlock launcher. */
export function confinementCommand(spec: ConfinementSpec): { file: string; args: string[] } {
  const confine = spec.confinement === 'bwrap' ? [BWRAP_PATH, ...bwrapArgs(spec)] : [landlockLauncherPath(), ...landlockArgs(spec)];
  const args = [
    `--as=${NODE_RESERVED_ADDRESS_SPACE + spec.memoryBytes}`,
    `--cpu=${spec.cpuSeconds}`,
    '--nofile=64',
    // A core dump would hold decrypted documents, written wherever the host's core_pattern says.
    '--core=0',
    '--', ...confine,
  ];
  return { file: PRLIMIT_PATH, args };
}
