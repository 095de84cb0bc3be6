/**
 * The attacks Landlock mode invites, through a real ToolRunner: without pid, ipc and net namespaces
 * the server runs as the worker's uid, next to its processes, unix sockets and files. Each must fail
 * under the full confinement; then each wall is taken away to show which one stopped it (the probe
 * is real), and the minimum Landlock ABI is emulated to show seccomp covers what it lacks.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ConfinementOverrides } from '../sandbox/confinement.ts';
import { materialize, type Sandbox } from '../sandbox/materialize.ts';
import { ToolRunner } from '../sandbox/runner.ts';

const SECRET = `victim-secret-${process.pid}-${Date.now()}`;
const ABSTRACT = `\0astry-landlock-test-${process.pid}`;
let base: string;
let sandbox: Sandbox;
let outsideFile: string;
let unixPath: string;
let tcpPort: number;
let victim: ChildProcess;
const servers: Server[] = [];
const runners: ToolRunner[] = [];

async function listening(server: Server): Promise<Server> {
  servers.push(server);
  await once(server, 'listening');
  return server;
}

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'astry-landlock-'));
  outsideFile = join(base, 'outside-secret.txt');
  writeFileSync(outsideFile, `${SECRET}\n`, { mode: 0o600 });
  sandbox = await materialize(join(base, 'sandboxes'), [{ documentId: 'd1', title: 'One', text: 'one\n' }]);
  // A pathname socket like /var/run/postgresql/.s.PGSQL.5432 or /var/run/docker.sock, an abstract
  // socket, and a loopback TCP port, all of this worker's uid.
  unixPath = join(base, 'service.sock');
  await listening(createServer((socket) => socket.destroy()).listen(unixPath));
  await listening(createServer((socket) => socket.destroy()).listen(ABSTRACT));
  const tcp = await listening(createServer((socket) => socket.destroy()).listen(0, '127.0.0.1'));
  const address = tcp.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP port');
  tcpPort = address.port;
  // Another process of the same uid holding a secret in its environment, with no more capabilities
  // than the server (as a non-root worker's processes are): only the confinement protects it.
  const sleep = ['sleep', '300'];
  victim = process.getuid?.() === 0
    ? spawn('setpriv', ['--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--', ...sleep], { env: { ASTRY_VICTIM_SECRET: SECRET }, stdio: 'ignore' })
    : spawn(sleep[0]!, sleep.slice(1), { env: { ASTRY_VICTIM_SECRET: SECRET }, stdio: 'ignore' });
  await new Promise((resolve) => setTimeout(resolve, 100)); // setpriv has exec'd sleep
});

after(async () => {
  await Promise.all(runners.map((r) => r.close()));
  victim.kill('SIGKILL');
  for (const server of servers) server.close();
  await sandbox.destroy();
  await rm(base, { recursive: true, force: true });
});

async function start(overrides?: ConfinementOverrides): Promise<ToolRunner> {
  const runner = await ToolRunner.start(sandbox, { confinement: 'landlock', allowProbe: true, ...(overrides ? { unsafeTestOverrides: overrides } : {}) });
  runners.push(runner);
  return runner;
}

/** Every attack of this file, as probe arguments. */
function attacks(): Record<string, Record<string, unknown>> {
  return {
    unixSocket: { kind: 'unix', path: unixPath },
    abstractSocket: { kind: 'unix', path: ABSTRACT },
    tcp: { kind: 'tcp', host: '127.0.0.1', port: tcpPort },
    workerEnviron: { kind: 'readFile', path: `/proc/${process.pid}/environ` },
    victimEnviron: { kind: 'readFile', path: `/proc/${victim.pid}/environ` },
    outsideFile: { kind: 'readFile', path: outsideFile },
    writeSandbox: { kind: 'write', path: join(sandbox.dir, 'doc-001.txt') },
    newFileInSandbox: { kind: 'write', path: join(sandbox.dir, 'planted.txt') },
    signalWorker: { kind: 'signal', pid: process.pid, signal: 0 },
    reniceVictim: { kind: 'renice', pid: victim.pid },
    chmodOutside: { kind: 'chmod', path: outsideFile, mode: 0o644 },
    shell: { kind: 'spawn', path: '/bin/sh' },
  };
}

async function attack(runner: ToolRunner, name: keyof ReturnType<typeof attacks>): Promise<string> {
  const result = await runner.probe(attacks()[name]!);
  if (typeof result !== 'string') return assert.fail(`probe returned ${JSON.stringify(result)}`);
  return result;
}

const ENVIRON_BYTES = `read ${Buffer.byteLength(`ASTRY_VICTIM_SECRET=${SECRET}\0`)} bytes`;
const OUTSIDE_BYTES = `read ${Buffer.byteLength(`${SECRET}\n`)} bytes`;

/** Undoes what a successful attack changed, so the next test starts from the same state. */
function restore(): void {
  chmodSync(outsideFile, 0o600);
  writeFileSync(outsideFile, `${SECRET}\n`);
  rmSync(join(sandbox.dir, 'planted.txt'), { force: true });
}

describe('Landlock mode: attacks on the worker\'s own uid', () => {
  it('every attack fails under the full confinement', async () => {
    const runner = await start();
    const outcomes: Record<string, string> = {};
    for (const name of Object.keys(attacks())) outcomes[name] = await attack(runner, name);
    assert.deepEqual(outcomes, {
      unixSocket: 'EPERM', // seccomp: no socket()
      abstractSocket: 'EPERM',
      tcp: 'EPERM',
      workerEnviron: 'EACCES', // Landlock: nothing under /proc
      victimEnviron: 'EACCES',
      outsideFile: 'EACCES', // Landlock: only node, the libraries, the tool server and the sandbox
      writeSandbox: 'EPERM', // seccomp: O_TRUNC (Landlock refuses writing, too)
      newFileInSandbox: 'EPERM',
      signalWorker: 'EPERM', // seccomp: kill(2) (Landlock's signal scope, too)
      reniceVictim: 'EPERM', // seccomp only: Landlock has no scope for priorities
      chmodOutside: 'EPERM', // seccomp only: Landlock does not control metadata
      shell: 'EPERM', // seccomp: no fork (Landlock: no execute right on /bin/sh)
    });
    assert.equal(statSync(outsideFile).mode & 0o777, 0o600);
    assert.equal(readFileSync(outsideFile, 'utf8'), `${SECRET}\n`);
    assert.equal(readFileSync(join(sandbox.dir, 'doc-001.txt'), 'utf8'), 'one\n');
  });

  it('the server holds no capability, has no_new_privs and a seccomp filter', async () => {
    const runner = await start();
    // Under Landlock the runner's pid is the server itself: prlimit and the launcher exec'd into node.
    const status = readFileSync(`/proc/${runner.pid}/status`, 'utf8');
    const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)$`, 'm').exec(status)?.[1];
    assert.match(readFileSync(`/proc/${runner.pid}/cmdline`, 'utf8'), /tool-server\.mjs/);
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb']) assert.equal(field(set), '0000000000000000', set);
    if (process.getuid?.() === 0) assert.equal(field('CapBnd'), '0000000000000000', 'uid 0 regains nothing at exec');
    assert.equal(field('NoNewPrivs'), '1');
    assert.equal(field('Seccomp'), '2');
  });
});

describe('Landlock mode: each wall on its own', () => {
  it('with no Landlock and no seccomp, every attack succeeds: the probes are real', async () => {
    const open = await start({ withoutLandlock: true, withoutSeccomp: true });
    try {
      assert.equal(await attack(open, 'unixSocket'), 'connected');
      assert.equal(await attack(open, 'abstractSocket'), 'connected');
      assert.equal(await attack(open, 'tcp'), 'connected');
      assert.equal(await attack(open, 'victimEnviron'), ENVIRON_BYTES);
      assert.equal(await attack(open, 'outsideFile'), OUTSIDE_BYTES);
      assert.equal(await attack(open, 'newFileInSandbox'), 'wrote');
      assert.equal(await attack(open, 'signalWorker'), 'signalled');
      assert.equal(await attack(open, 'reniceVictim'), 'reniced');
      assert.equal(await attack(open, 'chmodOutside'), 'changed');
      assert.equal(await attack(open, 'shell'), 'spawned, exit 2');
    } finally {
      restore();
    }
  });

  it('Landlock\'s filesystem rules: without them a file outside is read, and without seccomp too the sandbox is written', async () => {
    const noFs = await start({ withoutLandlockFs: true });
    assert.equal(await attack(noFs, 'outsideFile'), OUTSIDE_BYTES);
    // /proc/<pid>/environ stays shut: any Landlock domain forbids ptrace-class access to processes outside it.
    assert.equal(await attack(noFs, 'victimEnviron'), 'EACCES');
    const neither = await start({ withoutLandlockFs: true, withoutSeccomp: true });
    try {
      assert.equal(await attack(neither, 'newFileInSandbox'), 'wrote');
    } finally {
      restore();
    }
  });

  it('Landlock alone keeps /proc shut: without it, seccomp does not stop reading a same-uid process\'s environment', async () => {
    const noLandlock = await start({ withoutLandlock: true });
    assert.equal(await attack(noLandlock, 'victimEnviron'), ENVIRON_BYTES);
    assert.equal(await attack(noLandlock, 'unixSocket'), 'EPERM');
  });

  it('seccomp\'s socket rule alone stops a pathname unix socket; Landlock still stops TCP, abstract sockets, signals, files and exec', async () => {
    const noSeccomp = await start({ withoutSeccomp: true });
    try {
      assert.equal(await attack(noSeccomp, 'unixSocket'), 'connected', 'Landlock does not control connecting to a pathname socket');
      assert.equal(await attack(noSeccomp, 'tcp'), 'EACCES');
      assert.equal(await attack(noSeccomp, 'abstractSocket'), 'EPERM');
      assert.equal(await attack(noSeccomp, 'signalWorker'), 'EPERM');
      assert.equal(await attack(noSeccomp, 'outsideFile'), 'EACCES');
      assert.equal(await attack(noSeccomp, 'newFileInSandbox'), 'EACCES');
      assert.equal(await attack(noSeccomp, 'shell'), 'EACCES');
      // What only seccomp stops: Landlock has no rule for priorities or metadata.
      assert.equal(await attack(noSeccomp, 'reniceVictim'), 'reniced');
      assert.equal(await attack(noSeccomp, 'chmodOutside'), 'changed');
    } finally {
      restore();
    }
  });
});

describe('Landlock mode at the minimum ABI (1, emulated)', () => {
  // A file the server may read (as node and the libraries are), and that the worker's uid may write.
  const readable = (): ConfinementOverrides => ({ landlockAbi: 1, extraReadOnlyBinds: [outsideFile] });
  const truncate = { kind: 'openTruncate', path: '' };

  it('seccomp covers what ABI 1 lacks: truncation (ABI 3), TCP (4), abstract sockets and signals (6)', async () => {
    const runner = await start(readable());
    assert.equal(await runner.probe({ ...truncate, path: outsideFile }), 'EPERM');
    assert.equal(await attack(runner, 'tcp'), 'EPERM');
    assert.equal(await attack(runner, 'abstractSocket'), 'EPERM');
    assert.equal(await attack(runner, 'signalWorker'), 'EPERM');
    assert.equal(await attack(runner, 'victimEnviron'), 'EACCES');
    assert.equal(readFileSync(outsideFile, 'utf8'), `${SECRET}\n`);
  });

  it('without seccomp, ABI 1 lets those through, and the current ABI stops them again', async () => {
    const abi1 = await start({ ...readable(), withoutSeccomp: true });
    try {
      assert.equal(await attack(abi1, 'tcp'), 'connected');
      assert.equal(await attack(abi1, 'abstractSocket'), 'connected');
      assert.equal(await attack(abi1, 'signalWorker'), 'signalled');
      assert.equal(await abi1.probe({ ...truncate, path: outsideFile }), 'truncated');
      assert.equal(readFileSync(outsideFile, 'utf8'), '');
    } finally {
      restore();
    }
    const current = await start({ extraReadOnlyBinds: [outsideFile], withoutSeccomp: true });
    assert.equal(await current.probe({ ...truncate, path: outsideFile }), 'EACCES');
    assert.equal(await attack(current, 'tcp'), 'EACCES');
    assert.equal(await attack(current, 'abstractSocket'), 'EPERM');
    assert.equal(await attack(current, 'signalWorker'), 'EPERM');
    assert.equal(readFileSync(outsideFile, 'utf8'), `${SECRET}\n`);
  });
});
