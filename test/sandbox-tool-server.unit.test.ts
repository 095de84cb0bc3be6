/**
 * The tool server's own refusals (its second line behind the runner's manifest check) and the
 * confinement commands' walls (bubblewrap and Landlock), without starting either.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { bwrapArgs, confinementCommand, landlockArgs, landlockLauncherPath, LIBRARY_DIRS, NODE_RESERVED_ADDRESS_SPACE, type ConfinementSpec } from '../sandbox/confinement.ts';
import { emptyOpensslConfig, stripTypes, toolServerScript } from '../sandbox/tool-server-js.ts';
import { grepDocuments, handle, isGeneratedName, listDocuments, MAX_GREP_HITS, MAX_READ_CHARS, readSlice } from '../sandbox/tool-server.ts';

let dir: string;
let outside: string;

before(async () => {
  const base = await mkdtemp(join(tmpdir(), 'astry-tool-server-'));
  dir = join(base, 'sandbox');
  outside = join(base, 'outside.txt');
  mkdirSync(dir);
  writeFileSync(outside, 'secret outside\n');
  writeFileSync(join(dir, 'doc-001.txt'), 'alpha (a+)+$ beta\nsecond line\nAlpha again\n');
  writeFileSync(join(dir, 'doc-002.txt'), `${'x'.repeat(10)}😀tail`);
  writeFileSync(join(dir, 'doc-003.txt'), Array.from({ length: 500 }, (_, i) => `needle ${i}`).join('\n'));
  symlinkSync(outside, join(dir, 'doc-004.txt'));
  linkSync(outside, join(dir, 'doc-005.txt'));
  mkdirSync(join(dir, 'doc-006.txt'));
  assert.equal(spawnSync('mkfifo', [join(dir, 'doc-007.txt')]).status, 0);
  symlinkSync('doc-001.txt', join(dir, 'doc-008.txt'));
  writeFileSync(join(dir, 'notes.txt'), 'not a generated name');
});

after(async () => {
  await rm(join(dir, '..'), { recursive: true, force: true });
});

const Response = z.object({ id: z.number().nullable(), ok: z.boolean(), result: z.unknown().optional(), error: z.object({ code: z.string() }).optional() });

async function call(tool: string, args: unknown, allowProbe = false): Promise<z.infer<typeof Response>> {
  return Response.parse(JSON.parse(await handle(dir, JSON.stringify({ id: 7, tool, args }), allowProbe)));
}

describe('tool server', () => {
  it('accepts only generated names', () => {
    for (const name of ['doc-001.txt', 'doc-1000.txt']) assert.ok(isGeneratedName(name), name);
    const hostile = ['../doc-001.txt', '/etc/passwd', 'doc-001.txt/..', 'doc-001.txt\u0000', '..', '.', '', 'doc-01.txt', 'DOC-001.txt', 'doc-001.txt\n', ' doc-001.txt', 'doc-001.txt.lnk', '/sandbox/doc-001.txt', 42, null];
    for (const name of hostile) assert.ok(!isGeneratedName(name), JSON.stringify(name));
  });

  it('refuses paths, traversal, symlinks, hardlinks, directories and FIFOs as not found', async () => {
    for (const name of ['/etc/passwd', '../outside.txt', '/proc/1/environ', '/dev/zero', 'doc-004.txt', 'doc-005.txt', 'doc-006.txt', 'doc-007.txt', 'doc-008.txt', 'doc-999.txt', 'notes.txt']) {
      const response = await call('read', { name });
      assert.equal(response.ok, false, name);
      assert.equal(response.error?.code, 'NOT_FOUND', name);
    }
  });

  it('lists only plain single-link files with generated names', () => {
    assert.deepEqual(listDocuments(dir).map((f) => f.name), ['doc-001.txt', 'doc-002.txt', 'doc-003.txt']);
  });

  it('reads slices by UTF-16 offset, capped, never splitting a surrogate pair', () => {
    assert.deepEqual(readSlice(dir, { name: 'doc-001.txt', offset: 6, length: 7 }), { name: 'doc-001.txt', offset: 6, text: '(a+)+$ ', truncated: true });
    const cut = readSlice(dir, { name: 'doc-002.txt', offset: 0, length: 11 });
    assert.equal(cut.text, 'x'.repeat(10));
    assert.equal(readSlice(dir, { name: 'doc-002.txt', offset: 10, length: 2 }).text, '😀');
    assert.deepEqual(readSlice(dir, { name: 'doc-002.txt', offset: 1000 }), { name: 'doc-002.txt', offset: 1000, text: '', truncated: false });
    assert.equal(readSlice(dir, { name: 'doc-003.txt', length: 10 ** 9 }).text.length <= MAX_READ_CHARS, true);
  });

  it('greps literally (metacharacters are text, no backtracking), optionally ignoring case, with a hit cap', () => {
    assert.deepEqual(grepDocuments(dir, { pattern: '(a+)+$' }), [{ name: 'doc-001.txt', line: 1, text: 'alpha (a+)+$ beta' }]);
    assert.deepEqual(grepDocuments(dir, { pattern: 'alpha', ignoreCase: true }).map((h) => h.line), [1, 3]);
    assert.deepEqual(grepDocuments(dir, { pattern: 'alpha' }).map((h) => h.line), [1]);
    assert.equal(grepDocuments(dir, { pattern: 'needle', maxHits: 10 ** 6 }).length, MAX_GREP_HITS);
    assert.deepEqual(grepDocuments(dir, { pattern: 'secret outside' }), [], 'linked files are not searched');
  });

  it('answers malformed requests and unknown tools with errors, and hides probe unless enabled', async () => {
    assert.deepEqual(Response.parse(JSON.parse(await handle(dir, 'not json', false))), { id: null, ok: false, error: { code: 'BAD_REQUEST' } });
    assert.equal(Response.parse(JSON.parse(await handle(dir, '{"tool":"list"}', false))).ok, false);
    assert.equal((await call('exec', {})).ok, false);
    assert.equal((await call('grep', { pattern: 'x'.repeat(257) })).error?.code, 'TOO_LARGE');
    assert.equal((await call('probe', { kind: 'env' })).ok, false);
    assert.equal((await call('probe', { kind: 'env' }, true)).ok, true);
  });
});

describe('confinement command', () => {
  const spec: ConfinementSpec = { confinement: 'bwrap', sandboxDir: '/srv/sandboxes/abc', memoryBytes: 256 << 20, cpuSeconds: 10, allowProbe: false, seccompFd: 3 };

  it('unshares every namespace, clears the environment, drops capabilities and loads seccomp', () => {
    const args = bwrapArgs(spec);
    for (const flag of ['--unshare-user', '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup', '--disable-userns', '--die-with-parent', '--new-session', '--clearenv']) {
      assert.ok(args.includes(flag), flag);
    }
    assert.deepEqual(args.slice(args.indexOf('--cap-drop'), args.indexOf('--cap-drop') + 2), ['--cap-drop', 'ALL']);
    assert.deepEqual(args.slice(args.indexOf('--seccomp'), args.indexOf('--seccomp') + 2), ['--seccomp', '3']);
    assert.ok(!args.includes('--allow-probe'));
  });

  it('binds the sandbox read-only at /sandbox and no host directory other than the C libraries', () => {
    const args = bwrapArgs(spec);
    const binds: [string, string, string][] = [];
    args.forEach((arg, i) => {
      if (arg === '--bind' || arg === '--ro-bind' || arg === '--dev-bind' || arg === '--bind-try' || arg === '--ro-bind-try') binds.push([arg, args[i + 1]!, args[i + 2]!]);
    });
    assert.ok(binds.every(([kind]) => kind === '--ro-bind'), 'everything is read-only');
    assert.deepEqual(binds.map(([, , dest]) => dest).sort(), ['/astry/node', '/astry/tool-server.mjs', '/sandbox', '/usr/lib/x86_64-linux-gnu', '/usr/lib64'].sort());
    assert.deepEqual(binds.find(([, , dest]) => dest === '/sandbox')?.[1], spec.sandboxDir);
    assert.deepEqual(args.slice(args.indexOf('--chdir'), args.indexOf('--chdir') + 2), ['--chdir', '/sandbox']);
    assert.ok(args.includes('--remount-ro'));
  });

  it('limits address space, CPU, descriptors and core dumps before bwrap runs', () => {
    const { file, args } = confinementCommand(spec);
    assert.equal(file, '/usr/bin/prlimit');
    assert.deepEqual(args.slice(0, 6), [`--as=${NODE_RESERVED_ADDRESS_SPACE + (256 << 20)}`, '--cpu=10', '--nofile=64', '--core=0', '--', '/usr/bin/bwrap']);
  });

  it('drops a wall only when a test asks for it', () => {
    assert.ok(!bwrapArgs({ ...spec, overrides: { shareNetwork: true } }).includes('--unshare-net'));
    assert.ok(!bwrapArgs({ ...spec, overrides: { withoutSeccomp: true } }).includes('--seccomp'));
    assert.ok(bwrapArgs({ ...spec, allowProbe: true }).includes('--allow-probe'));
  });
});

describe('Landlock command', () => {
  const spec: ConfinementSpec = { confinement: 'landlock', sandboxDir: '/srv/sandboxes/abc', memoryBytes: 256 << 20, cpuSeconds: 10, allowProbe: false, seccompFd: 3 };
  const valuesOf = (args: string[], flag: string): string[] => args.flatMap((arg, i) => (arg === flag && args.indexOf('--') > i ? [args[i + 1]!] : []));

  it('grants reading the sandbox, the tool server and an empty OpenSSL configuration, and executing node and the C libraries', () => {
    const args = landlockArgs(spec);
    assert.deepEqual(valuesOf(args, '--ro'), [spec.sandboxDir, toolServerScript(), emptyOpensslConfig()]);
    assert.deepEqual(valuesOf(args, '--rx'), [realpathSync(process.execPath), ...LIBRARY_DIRS]);
    assert.deepEqual(valuesOf(args, '--chdir'), [spec.sandboxDir]);
    assert.deepEqual(valuesOf(args, '--seccomp-fd'), ['3']);
    assert.deepEqual(valuesOf(args, '--parent'), [String(process.pid)]);
    assert.ok(!args.some((arg) => arg.startsWith('--unsafe')), 'no wall is removed');
    assert.equal(readFileSync(emptyOpensslConfig(), 'utf8'), '');
  });

  it('runs node with the same flags as under bubblewrap, and OpenSSL pointed at the empty configuration', () => {
    const landlock = landlockArgs({ ...spec, allowProbe: true });
    const bwrap = bwrapArgs({ ...spec, confinement: 'bwrap', allowProbe: true });
    const node = landlock.slice(landlock.indexOf('--') + 1);
    assert.deepEqual(node, [realpathSync(process.execPath), `--openssl-config=${emptyOpensslConfig()}`, ...bwrap.slice(bwrap.indexOf('--') + 2, -2), toolServerScript(), '--allow-probe']);
  });

  it('sets the same rlimits, then runs the launcher built from this source', () => {
    const { file, args } = confinementCommand(spec);
    assert.equal(file, '/usr/bin/prlimit');
    assert.deepEqual(args.slice(0, 6), [`--as=${NODE_RESERVED_ADDRESS_SPACE + (256 << 20)}`, '--cpu=10', '--nofile=64', '--core=0', '--', landlockLauncherPath()]);
    const hash = createHash('sha256').update(readFileSync(new URL('../sandbox/landlock/launcher.c', import.meta.url))).digest('hex').slice(0, 12);
    assert.equal(landlockLauncherPath('/cache'), `/cache/bin/astry-landlock-${hash}`);
  });

  it('drops a wall only when a test asks for it', () => {
    assert.ok(landlockArgs({ ...spec, overrides: { withoutSeccomp: true } }).includes('--unsafe-no-seccomp'));
    assert.ok(!landlockArgs({ ...spec, overrides: { withoutSeccomp: true } }).includes('--seccomp-fd'));
    assert.ok(landlockArgs({ ...spec, overrides: { withoutLandlock: true } }).includes('--unsafe-no-landlock'));
    assert.ok(landlockArgs({ ...spec, overrides: { withoutLandlockFs: true } }).includes('--unsafe-no-landlock-fs'));
    assert.deepEqual(valuesOf(landlockArgs({ ...spec, overrides: { landlockAbi: 1 } }), '--unsafe-abi'), ['1']);
    assert.deepEqual(valuesOf(landlockArgs({ ...spec, overrides: { extraReadOnlyBinds: ['/etc'] } }), '--ro').at(-1), '/etc');
  });
});

describe('stripped tool server script', () => {
  it('is the source with its types stripped, in a private read-only file', () => {
    const path = toolServerScript();
    assert.equal(toolServerScript(), path, 'made once per process');
    assert.equal(statSync(path).mode & 0o777, 0o400);
    assert.equal(statSync(dirname(path)).mode & 0o777, 0o700);
    const source = readFileSync(new URL('../sandbox/tool-server.ts', import.meta.url), 'utf8');
    assert.equal(readFileSync(path, 'utf8'), stripTypes(source));
    assert.equal(readFileSync(path, 'utf8').length, source.length, 'positions kept: errors name source lines');
  });

  it('is what the confinement binds, as an ES module nothing inside can write', () => {
    const args = bwrapArgs({ confinement: 'bwrap', sandboxDir: dir, memoryBytes: 1, cpuSeconds: 1, allowProbe: false, seccompFd: null });
    const at = args.indexOf(toolServerScript());
    assert.deepEqual(args.slice(at - 1, at + 2), ['--ro-bind', toolServerScript(), '/astry/tool-server.mjs']);
    assert.ok(args.includes('/astry/tool-server.mjs', at + 2), 'node runs the bound script');
  });
});
