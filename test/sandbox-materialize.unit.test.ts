/** Materialization of a per-request sandbox, its destruction, and the start-up sweep. */
import assert from 'node:assert/strict';
import { linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isAstryError } from '../core/errors.ts';
import { generatedName, materialize, SANDBOX_DIR_NAME, sweepSandboxes } from '../sandbox/materialize.ts';
import { GENERATED_NAME } from '../sandbox/tool-server.ts';

let base: string;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'astry-materialize-'));
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

let counter = 0;
const freshRoot = () => join(base, `root-${++counter}`);

export const HOSTILE_TITLES = [
  'a\u0000b.txt',
  'line one\nline two',
  '..',
  '../../etc/passwd',
  '/etc/shadow',
  'x'.repeat(300),
  'invoice\u202Etxt.exe',
  'doc-001.txt',
];

describe('materialize', () => {
  it('creates the root 0700 and a random 0700 directory of 0400 single-link files with generated names', async () => {
    const root = join(freshRoot(), 'nested');
    const docs = [
      { documentId: 'd1', title: 'Plan', text: 'first document\n' },
      { documentId: 'd2', title: 'Budget', text: 'zweites Dokument — ünïcødé 🙂\n' },
    ];
    const sandbox = await materialize(root, docs);
    assert.equal(statSync(root).mode & 0o777, 0o700);
    assert.equal(join(root, sandbox.dir.slice(root.length + 1)), sandbox.dir);
    assert.match(sandbox.dir.slice(root.length + 1), SANDBOX_DIR_NAME);
    assert.equal(lstatSync(sandbox.dir).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(sandbox.dir).sort(), ['doc-001.txt', 'doc-002.txt']);
    assert.deepEqual(sandbox.files, [
      { name: 'doc-001.txt', documentId: 'd1', title: 'Plan', sizeBytes: Buffer.byteLength(docs[0]!.text) },
      { name: 'doc-002.txt', documentId: 'd2', title: 'Budget', sizeBytes: Buffer.byteLength(docs[1]!.text) },
    ]);
    for (const [i, file] of sandbox.files.entries()) {
      const stat = lstatSync(join(sandbox.dir, file.name));
      assert.ok(stat.isFile());
      assert.equal(stat.nlink, 1);
      assert.equal(stat.mode & 0o777, 0o400);
      assert.equal(readFileSync(join(sandbox.dir, file.name), 'utf8'), docs[i]!.text);
    }
    await sandbox.destroy();
  });

  it('never uses a title in a path: hostile titles get generated names and stay metadata', async () => {
    const root = freshRoot();
    const docs = HOSTILE_TITLES.map((title, i) => ({ documentId: `d${i}`, title, text: `body ${i}` }));
    const sandbox = await materialize(root, docs);
    const names = docs.map((_, i) => generatedName(i + 1));
    assert.deepEqual(readdirSync(sandbox.dir).sort(), names);
    assert.deepEqual(sandbox.files.map((f) => f.title), HOSTILE_TITLES);
    assert.deepEqual(sandbox.files.map((f) => f.name), names);
    for (const name of names) assert.match(name, GENERATED_NAME);
    // Nothing was created next to the sandbox or above the root.
    assert.deepEqual(readdirSync(root), [sandbox.dir.slice(root.length + 1)]);
    await sandbox.destroy();
  });

  it('gives every request its own unguessable directory', async () => {
    const root = freshRoot();
    const a = await materialize(root, []);
    const b = await materialize(root, []);
    assert.notEqual(a.dir, b.dir);
    assert.deepEqual(readdirSync(a.dir), []);
    await Promise.all([a.destroy(), b.destroy()]);
  });

  it('generates names the tool server accepts, past 999 too', () => {
    assert.equal(generatedName(1), 'doc-001.txt');
    assert.equal(generatedName(1000), 'doc-1000.txt');
    assert.match(generatedName(999_999), GENERATED_NAME);
  });

  it('refuses a root that is a symlink, a file, or open to others', async () => {
    const target = freshRoot();
    mkdirSync(target, { mode: 0o700 });
    const link = freshRoot();
    symlinkSync(target, link);
    const file = freshRoot();
    writeFileSync(file, 'x');
    const open = freshRoot();
    mkdirSync(open);
    await chmod(open, 0o755);
    for (const root of [link, file, open]) {
      await assert.rejects(materialize(root, []), (err) => isAstryError(err, 'CONFIG_INVALID'), root);
    }
    assert.deepEqual(readdirSync(target), [], 'nothing was written through the symlink');
  });

  it('removes what it wrote when a document cannot be written', async () => {
    const root = freshRoot();
    const bad = { documentId: 'd2', title: 't', text: 42 as unknown as string };
    await assert.rejects(materialize(root, [{ documentId: 'd1', title: 't', text: 'ok' }, bad]));
    assert.deepEqual(readdirSync(root), []);
  });
});

describe('Sandbox.destroy', () => {
  it('removes the directory without following links planted inside, and is idempotent', async () => {
    const root = freshRoot();
    const outside = freshRoot();
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep.txt'), 'precious');
    const sandbox = await materialize(root, [{ documentId: 'd1', title: 't', text: 'x' }]);
    symlinkSync(outside, join(sandbox.dir, 'dir-link'));
    symlinkSync(join(outside, 'keep.txt'), join(sandbox.dir, 'file-link'));
    linkSync(join(outside, 'keep.txt'), join(sandbox.dir, 'hard-link'));
    mkdirSync(join(sandbox.dir, 'sub'));
    symlinkSync(outside, join(sandbox.dir, 'sub', 'deeper-link'));
    await sandbox.destroy();
    await sandbox.destroy();
    assert.deepEqual(readdirSync(root), []);
    assert.equal(readFileSync(join(outside, 'keep.txt'), 'utf8'), 'precious');
    assert.equal(statSync(join(outside, 'keep.txt')).nlink, 1);
  });
});

describe('sweepSandboxes', () => {
  it('removes old sandbox directories only, never following links', async () => {
    const root = freshRoot();
    const old = await materialize(root, [{ documentId: 'd1', title: 't', text: 'x' }]);
    const fresh = await materialize(root, [{ documentId: 'd2', title: 't', text: 'y' }]);
    const past = new Date(Date.now() - 3_600_000);
    utimesSync(old.dir, past, past);
    // Not ours: a directory with another name, and a link shaped like a sandbox to a directory outside.
    const other = join(root, 'not-a-sandbox');
    mkdirSync(other);
    utimesSync(other, past, past);
    const outside = freshRoot();
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep.txt'), 'precious');
    symlinkSync(outside, join(root, 'f'.repeat(32)));

    assert.equal(await sweepSandboxes(root, 60_000), 1);
    assert.deepEqual(readdirSync(root).sort(), [fresh.dir.slice(root.length + 1), 'f'.repeat(32), 'not-a-sandbox'].sort());
    assert.equal(readFileSync(join(outside, 'keep.txt'), 'utf8'), 'precious');
    assert.equal(await sweepSandboxes(root, 0), 1, 'age 0 sweeps the fresh one too');
    await fresh.destroy();
  });

  it('counts nothing under a missing root', async () => {
    assert.equal(await sweepSandboxes(join(base, 'missing'), 0), 0);
  });
});
