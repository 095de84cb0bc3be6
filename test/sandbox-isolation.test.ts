/**
 * The isolation suite: every attack is tried through a real ToolRunner (real processes), under both
 * confinements: bubblewrap + seccomp + rlimits, and Landlock + seccomp + rlimits. Where a wall can
 * be taken away (network namespace, seccomp, the empty view, the memory limit), a test takes it away
 * and shows the same attack then succeeds: the outcome is due to that wall, not to a broken probe.
 * Landlock's own walls, and the attacks only its mode invites, are in sandbox-landlock.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { closeSync, linkSync, openSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { env } from '../core/env.ts';
import { isAstryError } from '../core/errors.ts';
import { materialize, type Sandbox } from '../sandbox/materialize.ts';
import type { Confinement } from '../sandbox/confinement.ts';
import { ToolRunner, type ToolRunnerOptions } from '../sandbox/runner.ts';
import { CONFINEMENT_MECHANISMS, confinementSelfTest } from '../sandbox/selftest.ts';
import { toolServerScript } from '../sandbox/tool-server-js.ts';

const SECRET = `s3cret-${process.pid}-${Date.now()}`;
const REPO = join(import.meta.dirname, '..');
const CONFINEMENTS: readonly Confinement[] = ['bwrap', 'landlock'];
const NODE = realpathSync(process.execPath);

let base: string;
let root: string;
let outsideFile: string;
let tcpPort: number;
let udpPort: number;
const udpReceived: string[] = [];
const tcpServer = createServer((socket) => socket.destroy());
const udpServer = createSocket('udp4');
const runners: ToolRunner[] = [];
const sandboxes: Sandbox[] = [];

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'astry-isolation-'));
  root = join(base, 'sandboxes');
  outsideFile = join(base, 'outside-secret.txt');
  writeFileSync(outsideFile, `${SECRET}\n`);
  tcpServer.listen(0, '127.0.0.1');
  await once(tcpServer, 'listening');
  const address = tcpServer.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP port');
  tcpPort = address.port;
  udpServer.on('message', (msg) => udpReceived.push(msg.toString()));
  udpServer.bind(0, '127.0.0.1');
  await once(udpServer, 'listening');
  udpPort = udpServer.address().port;
});

after(async () => {
  await Promise.all(runners.map((r) => r.close()));
  await Promise.all(sandboxes.map((s) => s.destroy()));
  tcpServer.close();
  udpServer.close();
  await rm(base, { recursive: true, force: true });
});

async function newSandbox(texts: string[] = ['alpha beta\ngamma\n', 'second document\n', 'third document\n']): Promise<Sandbox> {
  const sandbox = await materialize(root, texts.map((text, i) => ({ documentId: `doc-id-${i}`, title: `Title ${i}`, text })));
  sandboxes.push(sandbox);
  return sandbox;
}

async function startRunner(sandbox: Sandbox, options: ToolRunnerOptions = {}): Promise<ToolRunner> {
  const runner = await ToolRunner.start(sandbox, { allowProbe: true, ...options });
  runners.push(runner);
  return runner;
}

async function probe(runner: ToolRunner, args: Record<string, unknown>): Promise<string> {
  const result = await runner.probe(args);
  if (typeof result !== 'string') return assert.fail(`probe returned ${JSON.stringify(result)}`);
  return result;
}

const FdsSchema = z.array(z.object({ fd: z.number(), target: z.string() }));
const OpenFdsSchema = z.array(z.object({ fd: z.number(), dev: z.number(), ino: z.number(), kind: z.string() }));

/** A sandbox file as the server sees it: bubblewrap mounts the sandbox at /sandbox, Landlock leaves it where it is. */
function inside(confinement: Confinement, sandbox: Sandbox, name: string): string {
  return confinement === 'bwrap' ? `/sandbox/${name}` : join(sandbox.dir, name);
}
const isCode = (...codes: string[]) => (err: unknown) => isAstryError(err) && codes.includes(err.code);

/** Every live descendant of `pid`, from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited while listing
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

for (const confinement of CONFINEMENTS) {
  const bwrap = confinement === 'bwrap';
  // Outside the view: absent under bubblewrap, present but refused under Landlock.
  const HIDDEN = bwrap ? 'ENOENT' : 'EACCES';

  describe(`confined tool runner (${confinement})`, () => {
    let sandbox: Sandbox;
    let runner: ToolRunner;

    before(async () => {
      process.env.ASTRY_TEST_SECRET = SECRET;
      sandbox = await newSandbox();
      runner = await startRunner(sandbox, { confinement });
    });

    after(() => {
      delete process.env.ASTRY_TEST_SECRET;
    });

    it('serves list, read and grep over the sandbox', async () => {
      assert.deepEqual(await runner.list(), [
        { name: 'doc-001.txt', title: 'Title 0', sizeBytes: 17 },
        { name: 'doc-002.txt', title: 'Title 1', sizeBytes: 16 },
        { name: 'doc-003.txt', title: 'Title 2', sizeBytes: 15 },
      ]);
      assert.deepEqual(await runner.read('doc-001.txt', { offset: 6, length: 4 }), { name: 'doc-001.txt', offset: 6, text: 'beta', truncated: true });
      assert.deepEqual(await runner.grep('DOCUMENT', { ignoreCase: true }), [
        { name: 'doc-002.txt', line: 1, text: 'second document' },
        { name: 'doc-003.txt', line: 1, text: 'third document' },
      ]);
    });

    it('read() refuses host paths, traversal and absolute paths as not found', async () => {
      const paths = ['/etc/passwd', '/proc/1/environ', '/proc/self/environ', join(REPO, 'package.json'), env().ASTRY_KEK_FILE, '../../etc/passwd', '../doc-001.txt', '/sandbox/doc-001.txt', inside(confinement, sandbox, 'doc-001.txt'), './doc-001.txt', 'doc-001.txt/', '/dev/zero', `doc-001.txt\u0000`];
      for (const path of paths) await assert.rejects(runner.read(path), isCode('NOT_FOUND'), path);
    });

    it('shows nothing of the host: no /etc, home, /work, /tmp, /var, KEK, worker files', async () => {
      // Under Landlock node's own binary is readable at its host path (it must be, to run), as /astry/node is under bubblewrap.
      const paths = ['/etc/passwd', '/etc/hostname', join(homedir(), '.bashrc'), env().ASTRY_KEK_FILE, join(REPO, 'package.json'), join(REPO, 'sandbox', 'tool-server.ts'), outsideFile, ...(bwrap ? [process.execPath] : [])];
      for (const path of paths) assert.equal(await probe(runner, { kind: 'readFile', path }), HIDDEN, path);
      for (const path of ['/etc', '/root', '/home', '/work', '/tmp', '/var', '/usr/bin', homedir(), base]) {
        assert.equal(await probe(runner, { kind: 'readdir', path }), HIDDEN, path);
      }
      assert.equal(await probe(runner, { kind: 'readdir', path: '/' }), bwrap ? 'listed astry,dev,lib,lib64,proc,sandbox,usr' : 'EACCES');
      assert.equal(await probe(runner, { kind: 'readdir', path: inside(confinement, sandbox, '') }), 'listed doc-001.txt,doc-002.txt,doc-003.txt');
    });

    if (bwrap) {
      it('has its own pid namespace: only bwrap init and the server in /proc, init environment empty', async () => {
        const pids = (await probe(runner, { kind: 'readdir', path: '/proc' })).slice('listed '.length).split(',').filter((p) => /^\d+$/.test(p));
        assert.deepEqual(pids, ['1', '2']);
        assert.equal(await probe(runner, { kind: 'readFile', path: '/proc/1/environ' }), 'read 0 bytes');
      });
    } else {
      it('reads nothing in /proc: no process list, no environment, not even its own', async () => {
        assert.equal(await probe(runner, { kind: 'readdir', path: '/proc' }), 'EACCES');
        for (const pid of ['self', '1', String(process.pid)]) assert.equal(await probe(runner, { kind: 'readFile', path: `/proc/${pid}/environ` }), 'EACCES', pid);
      });
    }

    it('has an empty environment: a secret in the worker environment is absent inside', async () => {
      assert.equal(process.env.ASTRY_TEST_SECRET, SECRET);
      const result = await runner.probe({ kind: 'env' });
      assert.ok(!JSON.stringify(result).includes(SECRET));
      assert.deepEqual(result, bwrap ? { env: { PWD: '/sandbox' }, selfEnviron: 'PWD=/sandbox\u0000', initEnviron: '' } : { env: {}, selfEnviron: 'EACCES', initEnviron: 'EACCES' });
    });

    it('inherits no descriptor of the worker', async () => {
      const fd = openSync(outsideFile, 'r');
      try {
        const other = await startRunner(sandbox, { confinement });
        const outside = statSync(outsideFile);
        const open = OpenFdsSchema.parse(await other.probe({ kind: 'openFds' }));
        assert.ok(!open.some((f) => f.dev === outside.dev && f.ino === outside.ino), JSON.stringify(open));
        for (const { fd: n, kind } of open) assert.equal(kind === 'socket', n <= 2, `fd ${n} is a ${kind}`);
        if (bwrap) {
          const fds = FdsSchema.parse(await other.probe({ kind: 'fds' }));
          assert.ok(!fds.some((f) => f.target.includes(base) || f.target.includes(REPO)), JSON.stringify(fds));
          assert.notEqual(fds.find((f) => f.fd === fd)?.target, outsideFile);
          for (const { fd: n, target } of fds) {
            if (n <= 2) assert.match(target, /^socket:/, `fd ${n}`);
            else assert.match(target, /^(anon_inode:\[(eventfd|eventpoll)\]|pipe:\[\d+\]|\/dev\/null|ENOENT)$/, `fd ${n} -> ${target}`);
          }
        } else {
          // The launcher closes every descriptor above 2: what is left is node's own (event loop, pipes).
          assert.ok(open.every((f) => f.kind !== 'file' && f.kind !== 'dir' && f.kind !== 'char'), JSON.stringify(open));
        }
      } finally {
        closeSync(fd);
      }
    });

    it('cannot write anywhere: the sandbox, the root, /dev, /proc, /tmp', async () => {
      const paths = [inside(confinement, sandbox, 'doc-001.txt'), inside(confinement, sandbox, 'new.txt'), '/new.txt', '/dev/shm/x', '/dev/x', '/tmp/x', '/usr/lib64/x', join(base, 'x'), ...(bwrap ? ['/astry/x'] : [join(toolServerScript(), '..', 'x')])];
      for (const path of paths) {
        const outcome = await probe(runner, { kind: 'write', path });
        assert.match(outcome, /^(EROFS|ENOENT|EACCES|EPERM)$/, `${path}: ${outcome}`);
      }
      assert.deepEqual(readdirSync(sandbox.dir).sort(), ['doc-001.txt', 'doc-002.txt', 'doc-003.txt']);
      assert.equal(readFileSync(join(sandbox.dir, 'doc-001.txt'), 'utf8'), 'alpha beta\ngamma\n');
      assert.deepEqual(readdirSync(base).sort(), ['outside-secret.txt', 'sandboxes']);
    });

    it('has no network: TCP, UDP and DNS out all fail', async () => {
      assert.match(await probe(runner, { kind: 'tcp', host: '127.0.0.1', port: tcpPort }), /^(EPERM|ENETUNREACH|ECONNREFUSED)$/);
      assert.match(await probe(runner, { kind: 'tcp', host: '1.1.1.1', port: 443 }), /^(EPERM|ENETUNREACH)$/);
      assert.match(await probe(runner, { kind: 'udp', host: '127.0.0.1', port: udpPort }), /^(EPERM|ENETUNREACH)$/);
      assert.doesNotMatch(await probe(runner, { kind: 'dns', host: 'localhost' }), /^resolved/);
      assert.doesNotMatch(await probe(runner, { kind: 'dns', host: 'example.com' }), /^resolved/);
      assert.deepEqual(udpReceived, []);
    });

    it('cannot start a process: not a shell, and not even node itself', async () => {
      assert.match(await probe(runner, { kind: 'spawn', path: '/bin/sh' }), /^(ENOENT|EPERM)$/);
      assert.equal(await probe(runner, { kind: 'spawn', path: bwrap ? '/astry/node' : NODE }), 'EPERM');
    });

    it('refuses /dev/zero as a name; a runaway read inside dies at the memory limit, or /dev is out of reach', async () => {
      await assert.rejects(runner.read('/dev/zero'), isCode('NOT_FOUND'));
      if (!bwrap) {
        assert.equal(await probe(runner, { kind: 'readSome', path: '/dev/zero', bytes: 16 }), 'EACCES');
        return;
      }
      const victim = await startRunner(sandbox, { confinement, callTimeoutMs: 20_000 });
      assert.equal(await probe(victim, { kind: 'readSome', path: '/dev/zero', bytes: 16 }), 'read 16 bytes');
      const started = Date.now();
      await assert.rejects(victim.probe({ kind: 'readFile', path: '/dev/zero' }), isCode('CONFINEMENT_UNAVAILABLE'));
      assert.ok(Date.now() - started < 15_000);
    });
  });
}

for (const confinement of CONFINEMENTS) {
  describe(`planted links and hostile titles (${confinement})`, () => {
    it('refuses symlinks and hardlinks planted after materialization, and lists only the manifest', async () => {
      const sandbox = await newSandbox(['one\n', 'two\n', 'three\n', 'four\n']);
      // Replace manifest files behind the runner's back: a symlink to a file inside the view, a
      // hardlink to a file outside; plant a FIFO and an extra file outside the manifest.
      unlinkSync(join(sandbox.dir, 'doc-002.txt'));
      symlinkSync(confinement === 'bwrap' ? '/astry/tool-server.mjs' : toolServerScript(), join(sandbox.dir, 'doc-002.txt'));
      unlinkSync(join(sandbox.dir, 'doc-003.txt'));
      linkSync(outsideFile, join(sandbox.dir, 'doc-003.txt'));
      writeFileSync(join(sandbox.dir, 'doc-900.txt'), 'planted\n');
      const runner = await startRunner(sandbox, { confinement });
      await assert.rejects(runner.read('doc-002.txt'), isCode('NOT_FOUND'));
      await assert.rejects(runner.read('doc-003.txt'), isCode('NOT_FOUND'));
      await assert.rejects(runner.read('doc-900.txt'), isCode('NOT_FOUND'));
      assert.deepEqual((await runner.list()).map((f) => f.name), ['doc-001.txt', 'doc-004.txt']);
      assert.deepEqual(await runner.grep(SECRET), []);
      assert.deepEqual(await runner.grep('planted'), []);
      // The view does hold what was planted: the refusals above are the server's and the runner's.
      assert.match(await probe(runner, { kind: 'readFile', path: inside(confinement, sandbox, 'doc-002.txt') }), /^read \d+ bytes$/);
      assert.equal(await probe(runner, { kind: 'readFile', path: inside(confinement, sandbox, 'doc-003.txt') }), `read ${SECRET.length + 1} bytes`);
    });

    it('gives hostile titles generated names; the title is only metadata, returned verbatim', async () => {
      const titles = ['a\u0000b', 'line\nbreak', '..', '/', '../../etc/passwd', 'x'.repeat(300), 'report\u202Etxt.exe', 'doc-001.txt'];
      const sandbox = await materialize(root, titles.map((title, i) => ({ documentId: `t${i}`, title, text: `body ${i}\n` })));
      sandboxes.push(sandbox);
      const names = titles.map((_, i) => `doc-00${i + 1}.txt`);
      assert.deepEqual(readdirSync(sandbox.dir).sort(), names);
      const runner = await startRunner(sandbox, { confinement });
      assert.deepEqual(await runner.list(), titles.map((title, i) => ({ name: names[i], title, sizeBytes: `body ${i}\n`.length })));
      for (const [i, name] of names.entries()) assert.equal((await runner.read(name)).text, `body ${i}\n`);
      for (const title of titles.filter((t) => t !== 'doc-001.txt')) await assert.rejects(runner.read(title), isCode('NOT_FOUND'), JSON.stringify(title));
    });
  });
}

describe('each wall on its own (bwrap)', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await newSandbox();
  });

  // Landlock's walls are taken away one by one in sandbox-landlock.test.ts.
  it('the probe is real: with the network shared and no seccomp, TCP, UDP and DNS (with /etc) succeed', async () => {
    const open = await startRunner(sandbox, { unsafeTestOverrides: { shareNetwork: true, withoutSeccomp: true, extraReadOnlyBinds: ['/etc'] } });
    assert.equal(await probe(open, { kind: 'tcp', host: '127.0.0.1', port: tcpPort }), 'connected');
    assert.equal(await probe(open, { kind: 'udp', host: '127.0.0.1', port: udpPort }), 'sent');
    assert.match(await probe(open, { kind: 'dns', host: 'localhost' }), /^resolved /);
    assert.match(await probe(open, { kind: 'readFile', path: '/etc/passwd' }), /^read \d+ bytes$/);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(udpReceived.splice(0), ['probe']);
  });

  it('seccomp alone: with the host network shared, socket(AF_INET) fails with EPERM', async () => {
    const shared = await startRunner(sandbox, { unsafeTestOverrides: { shareNetwork: true } });
    assert.equal(await probe(shared, { kind: 'tcp', host: '127.0.0.1', port: tcpPort }), 'EPERM');
    assert.equal(await probe(shared, { kind: 'udp', host: '127.0.0.1', port: udpPort }), 'EPERM');
    assert.deepEqual(udpReceived, []);
  });

  it('the network namespace alone: without seccomp, the host loopback is unreachable', async () => {
    const unshared = await startRunner(sandbox, { unsafeTestOverrides: { withoutSeccomp: true } });
    assert.match(await probe(unshared, { kind: 'tcp', host: '127.0.0.1', port: tcpPort }), /^(ENETUNREACH|ECONNREFUSED)$/);
    assert.match(await probe(unshared, { kind: 'udp', host: '127.0.0.1', port: udpPort }), /^(ENETUNREACH|sent)$/);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(udpReceived, []);
  });

  it('seccomp is what stops a process start; the view is what hides the shell', async () => {
    const noSeccomp = await startRunner(sandbox, { unsafeTestOverrides: { withoutSeccomp: true } });
    assert.equal(await probe(noSeccomp, { kind: 'spawn', path: '/astry/node' }), 'spawned, exit 7');
    assert.equal(await probe(noSeccomp, { kind: 'spawn', path: '/bin/sh' }), 'ENOENT');
  });
});

for (const confinement of CONFINEMENTS) {
  describe(`rlimits (${confinement})`, () => {
    let sandbox: Sandbox;
    before(async () => {
      sandbox = await newSandbox();
    });

    it('the memory limit: 192 MiB fit in the default 256 MiB, 1 GiB does not, and does under 2 GiB', async () => {
      const limited = await startRunner(sandbox, { confinement });
      assert.equal(await probe(limited, { kind: 'alloc', bytes: 192 << 20 }), `allocated ${192 << 20} bytes`);
      const outcome = await limited.probe({ kind: 'alloc', bytes: 1 << 30 }).catch((err: unknown) => err);
      assert.ok(isAstryError(outcome, 'CONFINEMENT_UNAVAILABLE') || (typeof outcome === 'string' && !outcome.startsWith('allocated')), String(outcome));
      const roomy = await startRunner(sandbox, { confinement, memoryBytes: 2 * 1024 ** 3 });
      assert.equal(await probe(roomy, { kind: 'alloc', bytes: 1 << 30 }), `allocated ${1 << 30} bytes`);
    });

    it('the CPU limit kills a spinning server', async () => {
      const runner = await startRunner(sandbox, { confinement, cpuSeconds: 1, callTimeoutMs: 30_000 });
      const started = Date.now();
      await assert.rejects(runner.probe({ kind: 'spin', ms: 20_000 }), isCode('CONFINEMENT_UNAVAILABLE'));
      assert.ok(Date.now() - started < 10_000, `killed after ${Date.now() - started} ms`);
    });
  });
}

for (const confinement of CONFINEMENTS) {
  describe(`descriptor hygiene (${confinement})`, () => {
    it('a descriptor the worker inherited without close-on-exec does not reach the sandbox', async () => {
      const sandbox = await newSandbox();
      const secretFd = openSync(outsideFile, 'r');
      // A worker started by a careless parent: fd 50 is open, inheritable, on a secret file. (Node marks
      // some low inherited descriptors close-on-exec at start-up, not all; 50 stays inheritable.)
      const script = `
        import { inheritableFds, ToolRunner } from ${JSON.stringify(join(REPO, 'sandbox', 'runner.ts'))};
        const runner = await ToolRunner.start({ dir: ${JSON.stringify(sandbox.dir)}, files: [] }, { confinement: ${JSON.stringify(confinement)}, allowProbe: true });
        const fds = await runner.probe({ kind: 'openFds' });
        await runner.close();
        process.stdout.write(JSON.stringify({ inheritable: inheritableFds(), fds }));`;
      try {
        const stdio: ('ignore' | 'pipe' | 'inherit' | number)[] = ['ignore', 'pipe', 'inherit'];
        while (stdio.length < 50) stdio.push('ignore');
        stdio.push(secretFd);
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio });
        let out = '';
        child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
        const [code] = await once(child, 'close');
        assert.equal(code, 0);
        const { inheritable, fds } = z.object({ inheritable: z.array(z.number()), fds: OpenFdsSchema }).parse(JSON.parse(out));
        assert.ok(inheritable.includes(50), 'the scenario is real: fd 50 is inheritable in that worker');
        const secret = statSync(outsideFile);
        assert.ok(!fds.some((f) => f.dev === secret.dev && f.ino === secret.ino), JSON.stringify(fds));
        // bubblewrap: /dev/null sits over it (the runner's stdio); Landlock: the launcher closed it too.
        if (confinement === 'bwrap') assert.equal(fds.find((f) => f.fd === 50)?.kind, 'char');
        else assert.equal(fds.find((f) => f.fd === 50), undefined);
      } finally {
        closeSync(secretFd);
      }
    });
  });
}

for (const confinement of CONFINEMENTS) {
  const bwrap = confinement === 'bwrap';
  describe(`runner lifecycle (${confinement})`, () => {
    let sandbox: Sandbox;
    before(async () => {
      sandbox = await newSandbox(['short\n', 'y'.repeat(10_000)]);
    });

    it('close() kills the confined process and everything under it', async () => {
      const runner = await ToolRunner.start(sandbox, { confinement });
      const pid = runner.pid!;
      const tree = [pid, ...descendants(pid)];
      // bubblewrap: prlimit/bwrap, bwrap init and node; Landlock: prlimit, the launcher and node are one process.
      assert.ok(tree.length >= (bwrap ? 3 : 1), `the confined tree: ${tree}`);
      await runner.close();
      await runner.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(tree.filter(alive), []);
      await assert.rejects(runner.list(), isCode('CONFINEMENT_UNAVAILABLE'));
    });

    it('a call past its timeout stops the runner', async () => {
      const runner = await startRunner(sandbox, { confinement, callTimeoutMs: 300 });
      const tree = [runner.pid!, ...descendants(runner.pid!)];
      await assert.rejects(runner.probe({ kind: 'spin', ms: 5000 }), isCode('TIMEOUT'));
      await assert.rejects(runner.list(), isCode('CONFINEMENT_UNAVAILABLE'));
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(tree.filter(alive), []);
    });

    it('output larger than the cap stops the runner', async () => {
      const runner = await startRunner(sandbox, { confinement, maxOutputBytes: 2000 });
      assert.equal((await runner.read('doc-001.txt')).text, 'short\n');
      await assert.rejects(runner.read('doc-002.txt'), isCode('TOO_LARGE'));
      await assert.rejects(runner.read('doc-001.txt'), isCode('CONFINEMENT_UNAVAILABLE'));
    });

    it('probe is unavailable unless enabled', async () => {
      const runner = await startRunner(sandbox, { confinement, allowProbe: false });
      await assert.rejects(runner.probe({ kind: 'env' }), /probe is disabled/);
    });

    it('fails closed with CONFINEMENT_UNAVAILABLE when the confinement cannot be set up', async () => {
      await assert.rejects(ToolRunner.start(sandbox, { confinement, unsafeTestOverrides: { extraReadOnlyBinds: [join(base, 'does-not-exist')] } }), isCode('CONFINEMENT_UNAVAILABLE'));
    });

    it('the self-test passes here', async () => {
      assert.deepEqual(await confinementSelfTest(confinement), { ok: true, mechanism: CONFINEMENT_MECHANISMS[confinement] });
    });

    it('starts in well under a second (p50 of 7)', async () => {
      const ms: number[] = [];
      for (let i = 0; i < 7; i++) {
        const started = performance.now();
        const runner = await ToolRunner.start(sandbox, { confinement });
        ms.push(performance.now() - started);
        await runner.close();
      }
      ms.sort((a, b) => a - b);
      console.log(`tool runner start (${confinement}): p50 ${ms[3]!.toFixed(0)} ms, min ${ms[0]!.toFixed(0)} ms, max ${ms[6]!.toFixed(0)} ms`);
      assert.ok(ms[3]! < 1500);
    });
  });
}
