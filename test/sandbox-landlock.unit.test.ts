/**
 * The Landlock launcher fails closed: whenever a step cannot be taken (no Landlock in the kernel,
 * an ABI below the minimum, a path it cannot grant, no whole seccomp program, a worker already
 * gone) it exits 125 with a reason and never runs the command; the runner then raises
 * CONFINEMENT_UNAVAILABLE. Also: scripts/build-landlock.sh builds the launcher under the name the
 * runner looks for, once.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isAstryError } from '../core/errors.ts';
import { BWRAP_PATH, LAUNCHER_HASH, landlockLauncherPath } from '../sandbox/confinement.ts';
import { ToolRunner } from '../sandbox/runner.ts';
import { buildSeccompProgram, ENOSYS, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO } from '../sandbox/seccomp.ts';

const REPO = join(import.meta.dirname, '..');
let base: string;
let sandboxDir: string;
let program: string;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'astry-landlock-unit-'));
  sandboxDir = join(base, 'sandbox');
  mkdirSync(sandboxDir, { mode: 0o700 });
  writeFileSync(join(sandboxDir, 'doc-001.txt'), 'hello\n', { mode: 0o400 });
  program = join(base, 'seccomp.bpf');
  writeFileSync(program, buildSeccompProgram('landlock'));
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

/** Runs the launcher on `/bin/echo UNCONFINED` with the seccomp program in `programFile` on fd 3. */
function launch(flags: string[], programFile = program): SpawnSyncReturns<string> {
  const fd = openSync(programFile, 'r');
  try {
    const args = ['--parent', String(process.pid), '--ro', sandboxDir, '--rx', '/usr/bin', '--rx', '/usr/lib', '--chdir', sandboxDir, '--seccomp-fd', '3', ...flags, '--', '/bin/echo', 'UNCONFINED'];
    return spawnSync(landlockLauncherPath(), args, { stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8', env: {} });
  } finally {
    closeSync(fd);
  }
}

function assertRefused(result: SpawnSyncReturns<string>, reason: RegExp): void {
  assert.equal(result.stdout, '', 'the command never ran');
  assert.equal(result.status, 125, result.stderr);
  assert.match(result.stderr, reason);
  assert.match(result.stderr, /refusing to start the tool server/);
}

describe('Landlock launcher', () => {
  it('runs the command once every step has been taken (the control for the refusals below)', () => {
    const result = launch([]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'UNCONFINED\n');
  });

  it('refuses, and runs nothing, when the kernel offers no Landlock ABI at or above the minimum', () => {
    assertRefused(launch(['--unsafe-abi', '0']), /Landlock ABI 0 is below the minimum 1/);
  });

  it('refuses when the kernel has no Landlock at all (landlock_create_ruleset answers ENOSYS)', { skip: !existsSync(BWRAP_PATH) && 'needs bubblewrap to apply a seccomp filter from outside' }, () => {
    // An outer filter (applied by bwrap) that makes landlock_create_ruleset(444) ENOSYS, as on a kernel without it.
    const outer = Buffer.alloc(32);
    [[0x20, 0, 0, 0], [0x15, 0, 1, 444], [0x06, 0, 0, SECCOMP_RET_ERRNO | ENOSYS], [0x06, 0, 0, SECCOMP_RET_ALLOW]].forEach(([code, jt, jf, k], i) => {
      outer.writeUInt16LE(code!, i * 8);
      outer.writeUInt8(jt!, i * 8 + 2);
      outer.writeUInt8(jf!, i * 8 + 3);
      outer.writeUInt32LE(k! >>> 0, i * 8 + 4);
    });
    const outerFile = join(base, 'no-landlock.bpf');
    writeFileSync(outerFile, outer);
    const fd = openSync(outerFile, 'r');
    try {
      const args = ['--ro-bind', '/', '/', '--seccomp', '3', '--', landlockLauncherPath(), '--parent', '1', '--unsafe-no-seccomp', '--ro', sandboxDir, '--chdir', sandboxDir, '--', '/bin/echo', 'UNCONFINED'];
      // Under bwrap the launcher's parent is bwrap's init, pid 1 of the new namespace.
      const result = spawnSync(BWRAP_PATH, ['--unshare-user', '--unshare-pid', ...args], { stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8', env: {} });
      assertRefused(result, /Landlock is not available/);
    } finally {
      closeSync(fd);
    }
  });

  it('refuses when a path it should grant cannot be opened', () => {
    assertRefused(launch(['--ro', join(base, 'does-not-exist')]), /opening .*does-not-exist/);
  });

  it('refuses without a whole seccomp program, and when seccomp is not requested properly', () => {
    const empty = join(base, 'empty.bpf');
    writeFileSync(empty, '');
    assertRefused(launch([], empty), /not whole instructions/);
    const partial = join(base, 'partial.bpf');
    writeFileSync(partial, buildSeccompProgram('landlock').subarray(0, 13));
    assertRefused(launch([], partial), /not whole instructions/);
    const result = spawnSync(landlockLauncherPath(), ['--parent', String(process.pid), '--chdir', sandboxDir, '--', '/bin/echo', 'UNCONFINED'], { encoding: 'utf8', env: {} });
    assertRefused(result, /--seccomp-fd .* required/);
  });

  it('refuses when the worker that started it is already gone', () => {
    assertRefused(launch(['--parent', '1']), /the worker \(pid 1\) has exited/);
  });

  it('makes the runner raise CONFINEMENT_UNAVAILABLE with the launcher\'s reason, never serve', async () => {
    const sandbox = { dir: sandboxDir, files: [{ name: 'doc-001.txt', title: 'hello' }] };
    await assert.rejects(
      ToolRunner.start(sandbox, { confinement: 'landlock', unsafeTestOverrides: { landlockAbi: 0 } }),
      (err: unknown) => isAstryError(err, 'CONFINEMENT_UNAVAILABLE') && /Landlock ABI 0 is below the minimum/.test(err.message),
    );
    const cache = process.env.ASTRY_CACHE;
    process.env.ASTRY_CACHE = join(base, 'empty-cache');
    try {
      await assert.rejects(
        ToolRunner.start(sandbox, { confinement: 'landlock' }),
        (err: unknown) => isAstryError(err, 'CONFINEMENT_UNAVAILABLE') && err.message.includes(`astry-landlock-${LAUNCHER_HASH} is missing`),
      );
    } finally {
      if (cache === undefined) delete process.env.ASTRY_CACHE;
      else process.env.ASTRY_CACHE = cache;
    }
  });
});

describe('launcher build', () => {
  it('builds into the cache under the hash of its source, once', () => {
    const cache = join(base, 'cache');
    const build = () => spawnSync('bash', [join(REPO, 'scripts', 'build-landlock.sh')], { encoding: 'utf8', env: { ...process.env, ASTRY_CACHE: cache } });
    const first = build();
    assert.equal(first.status, 0, first.stderr);
    const binary = landlockLauncherPath(cache);
    assert.match(first.stdout, new RegExp(`built ${binary}`));
    const built = statSync(binary);
    assert.equal(built.mode & 0o777, 0o755);
    const second = build();
    assert.equal(second.status, 0, second.stderr);
    assert.equal(second.stdout, '', 'a warm run builds nothing');
    assert.equal(statSync(binary).mtimeMs, built.mtimeMs);
  });
});
