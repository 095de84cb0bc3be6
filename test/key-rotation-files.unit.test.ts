import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isAstryError, type AstryErrorCode } from '../core/errors.ts';
import { newDataKey } from '../vault/envelope.ts';
import { archivedKeyPath, LocalKeyFileProvider, localKeyId } from '../vault/key-provider.ts';

const rejectsWith = (code: AstryErrorCode) => (err: unknown) => isAstryError(err, code);

describe('local KEK files across a rotation', () => {
  let dir: string;
  let n = 0;
  const fresh = async () => {
    const sub = join(dir, `case-${n++}`);
    return { sub, path: join(sub, 'kek.key') };
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'astry-kek-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('rotate archives the old key and the new one under their ids, then makes the new one active', async () => {
    const { sub, path } = await fresh();
    const before = await LocalKeyFileProvider.open(path);
    const { previous, next } = await LocalKeyFileProvider.rotate(path);
    assert.equal(previous, before.keyId);
    assert.notEqual(next, previous);
    assert.deepEqual((await readdir(sub)).sort(), ['kek.key', `kek.key.${previous.slice(6)}`, `kek.key.${next.slice(6)}`].sort());
    assert.equal(localKeyId(await readFile(path)), next);
    assert.equal(localKeyId(await readFile(archivedKeyPath(path, previous))), previous);
    assert.deepEqual(
      (await LocalKeyFileProvider.list(path)).map((k) => [k.keyId, k.active]),
      [[next, true], [previous, false]],
    );
  });

  it('a provider opened before a rotation wraps under the new key at its next wrap and still unwraps the old keys', async () => {
    const { path } = await fresh();
    const provider = await LocalKeyFileProvider.open(path);
    const dek = newDataKey();
    const old = await provider.wrap(dek, 'ctx');
    const { next } = await LocalKeyFileProvider.rotate(path);
    const rewrapped = await provider.wrap(dek, 'ctx');
    assert.equal(rewrapped.keyId, next, 'the wrap names the key that sealed it');
    assert.equal(await provider.activeKeyId(), next);
    assert.deepEqual(await provider.unwrap(old.wrapped, old.keyId, 'ctx'), dek);
    assert.deepEqual(await provider.unwrap(rewrapped.wrapped, rewrapped.keyId, 'ctx'), dek);
    // A provider opened afterwards loads the archived key for unwrapping.
    const later = await LocalKeyFileProvider.open(path);
    assert.deepEqual(await later.unwrap(old.wrapped, old.keyId, 'ctx'), dek);
  });

  it('a provider that has not seen a rotation finds the new key when a row names it', async () => {
    const { path } = await fresh();
    const stale = await LocalKeyFileProvider.open(path);
    await LocalKeyFileProvider.rotate(path);
    const other = await LocalKeyFileProvider.open(path);
    const dek = newDataKey();
    const wrapped = await other.wrap(dek, 'ctx');
    assert.deepEqual(await stale.unwrap(wrapped.wrapped, wrapped.keyId, 'ctx'), dek);
  });

  it('retire deletes an old key file, refuses the active key and unknown ids, and a running provider keeps what it loaded', async () => {
    const { sub, path } = await fresh();
    const provider = await LocalKeyFileProvider.open(path);
    const old = await provider.wrap(newDataKey(), 'ctx');
    const { previous, next } = await LocalKeyFileProvider.rotate(path);
    await assert.rejects(LocalKeyFileProvider.retire(path, next), rejectsWith('CONFLICT'));
    await assert.rejects(LocalKeyFileProvider.retire(path, 'local:0000000000000000'), rejectsWith('NOT_FOUND'));
    await assert.rejects(LocalKeyFileProvider.retire(path, '../../etc/passwd'), rejectsWith('NOT_FOUND'));
    assert.equal(await LocalKeyFileProvider.retire(path, previous), archivedKeyPath(path, previous));
    assert.deepEqual((await readdir(sub)).sort(), ['kek.key', `kek.key.${next.slice(6)}`]);
    await provider.unwrap(old.wrapped, old.keyId, 'ctx');
    const reopened = await LocalKeyFileProvider.open(path);
    await assert.rejects(reopened.unwrap(old.wrapped, old.keyId, 'ctx'), rejectsWith('DECRYPT_FAILED'));
  });

  it('an archived key file that does not hold the key its name says, or with loose permissions, is refused', async () => {
    const { path } = await fresh();
    await LocalKeyFileProvider.open(path);
    const { previous } = await LocalKeyFileProvider.rotate(path);
    const archived = archivedKeyPath(path, previous);
    await rm(archived);
    await writeFile(archived, newDataKey(), { mode: 0o600 });
    await assert.rejects(LocalKeyFileProvider.open(path), rejectsWith('CONFIG_INVALID'));
    await rm(archived);
    const { path: second } = await fresh();
    await LocalKeyFileProvider.open(second);
    const rotated = await LocalKeyFileProvider.rotate(second);
    await chmod(archivedKeyPath(second, rotated.previous), 0o644);
    await assert.rejects(LocalKeyFileProvider.open(second), rejectsWith('CONFIG_INVALID'));
  });

  it('a key file that vanished stops wrapping rather than wrapping under a key no longer on disk', async () => {
    const { path } = await fresh();
    const provider = await LocalKeyFileProvider.open(path);
    await rm(path);
    await assert.rejects(provider.wrap(newDataKey(), 'ctx'), rejectsWith('CONFIG_INVALID'));
  });
});
