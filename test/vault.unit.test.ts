import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createDecipheriv } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspect, promisify } from 'node:util';
import { isAstryError } from '../core/errors.ts';
import {
  decrypt,
  encrypt,
  newDataKey,
  packSealed,
  serializeAad,
  unpackSealed,
  type Sealed,
  type VaultAad,
} from '../vault/envelope.ts';
import { LocalKeyFileProvider } from '../vault/key-provider.ts';

const aad: VaultAad = { workspaceId: 'ws-1', documentId: 'doc-1', version: 3, part: 'content' };
const secret = 'quarterly numbers: revenue 42 million';
const plaintext = Buffer.from(secret, 'utf8');

function rejectsWith(code: string) {
  return (err: unknown) => isAstryError(err) && err.code === code;
}

function copy(sealed: Sealed): Sealed {
  return { iv: Buffer.from(sealed.iv), ciphertext: Buffer.from(sealed.ciphertext), tag: Buffer.from(sealed.tag) };
}

describe('vault envelope', () => {
  it('round-trips a document part under its data key and AAD', () => {
    const dek = newDataKey();
    const sealed = encrypt(plaintext, aad, dek);
    assert.equal(sealed.iv.length, 12);
    assert.equal(sealed.tag.length, 16);
    assert.notDeepEqual(sealed.ciphertext, plaintext);
    assert.deepEqual(decrypt(sealed, aad, dek), plaintext);
    assert.deepEqual(decrypt(unpackSealed(packSealed(sealed)), aad, dek), plaintext);
  });

  it('round-trips empty and large plaintexts', () => {
    const dek = newDataKey();
    for (const body of [Buffer.alloc(0), Buffer.alloc(3 * 1024 * 1024, 7)]) {
      assert.deepEqual(decrypt(unpackSealed(packSealed(encrypt(body, aad, dek))), aad, dek), body);
    }
  });

  it('uses a fresh IV and data key every time', () => {
    const dek = newDataKey();
    assert.equal(dek.length, 32);
    assert.notDeepEqual(newDataKey(), dek);
    assert.notDeepEqual(encrypt(plaintext, aad, dek).iv, encrypt(plaintext, aad, dek).iv);
  });

  it('rejects every single flipped bit of a packed blob (version, iv, tag, ciphertext)', () => {
    const dek = newDataKey();
    const packed = packSealed(encrypt(Buffer.from('short'), aad, dek));
    for (let byte = 0; byte < packed.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const tampered = Buffer.from(packed);
        tampered[byte] = (tampered[byte] ?? 0) ^ (1 << bit);
        assert.throws(() => decrypt(unpackSealed(tampered), aad, dek), rejectsWith('DECRYPT_FAILED'), `byte ${byte} bit ${bit}`);
      }
    }
  });

  it('rejects flipped bits in each field of an unpacked blob', () => {
    const dek = newDataKey();
    const sealed = encrypt(plaintext, aad, dek);
    for (const field of ['iv', 'tag', 'ciphertext'] as const) {
      for (const index of [0, sealed[field].length - 1]) {
        const tampered = copy(sealed);
        tampered[field][index] = (tampered[field][index] ?? 0) ^ 0x80;
        assert.throws(() => decrypt(tampered, aad, dek), rejectsWith('DECRYPT_FAILED'), `${field}[${index}]`);
      }
    }
  });

  it('sanity: GCM itself accepts a truncated tag when told to expect one', () => {
    const dek = newDataKey();
    const sealed = encrypt(plaintext, aad, dek);
    const decipher = createDecipheriv('aes-256-gcm', dek, sealed.iv, { authTagLength: 12 });
    decipher.setAAD(serializeAad(aad));
    decipher.setAuthTag(sealed.tag.subarray(0, 12));
    assert.deepEqual(Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]), plaintext);
  });

  for (const length of [15, 12, 8, 4, 1, 0]) {
    it(`rejects a valid tag truncated to ${length} bytes`, () => {
      const dek = newDataKey();
      const sealed = encrypt(plaintext, aad, dek);
      const short = { ...sealed, tag: Buffer.from(sealed.tag.subarray(0, length)) };
      assert.throws(() => decrypt(short, aad, dek), rejectsWith('DECRYPT_FAILED'));
    });
  }

  it('rejects a tag that is too long, an IV of the wrong length and a wrong-size key', () => {
    const dek = newDataKey();
    const sealed = encrypt(plaintext, aad, dek);
    assert.throws(() => decrypt({ ...sealed, tag: Buffer.concat([sealed.tag, Buffer.of(0)]) }, aad, dek), rejectsWith('DECRYPT_FAILED'));
    assert.throws(() => decrypt({ ...sealed, iv: sealed.iv.subarray(0, 11) }, aad, dek), rejectsWith('DECRYPT_FAILED'));
    assert.throws(() => decrypt({ ...sealed, iv: Buffer.concat([sealed.iv, Buffer.of(0)]) }, aad, dek), rejectsWith('DECRYPT_FAILED'));
    assert.throws(() => decrypt(sealed, aad, dek.subarray(0, 16)), rejectsWith('DECRYPT_FAILED'));
  });

  it('rejects the wrong data key', () => {
    const sealed = encrypt(plaintext, aad, newDataKey());
    assert.throws(() => decrypt(sealed, aad, newDataKey()), rejectsWith('DECRYPT_FAILED'));
  });

  const moves: Array<[string, VaultAad]> = [
    ['another workspace', { ...aad, workspaceId: 'ws-2' }],
    ['another document', { ...aad, documentId: 'doc-2' }],
    ['an older version', { ...aad, version: 2 }],
    ['a newer version', { ...aad, version: 4 }],
    ['another part', { ...aad, part: 'chunk:0' }],
  ];
  for (const [where, target] of moves) {
    it(`a blob moved to ${where} does not decrypt`, () => {
      const dek = newDataKey();
      const sealed = encrypt(plaintext, aad, dek);
      assert.throws(() => decrypt(sealed, target, dek), rejectsWith('DECRYPT_FAILED'));
    });
  }

  it('serializes AAD unambiguously: shifting text between fields changes the bytes', () => {
    const pairs: Array<[VaultAad, VaultAad]> = [
      [{ workspaceId: 'a\u0000b', documentId: 'c', version: 1, part: 'p' }, { workspaceId: 'a', documentId: 'b\u0000c', version: 1, part: 'p' }],
      [{ workspaceId: 'a","b', documentId: 'c', version: 1, part: 'p' }, { workspaceId: 'a', documentId: 'b","c', version: 1, part: 'p' }],
      [{ workspaceId: 'a', documentId: 'b', version: 12, part: 'p' }, { workspaceId: 'a', documentId: 'b1', version: 2, part: 'p' }],
      [{ workspaceId: 'ws', documentId: 'd', version: 1, part: '' }, { workspaceId: 'ws', documentId: 'd', version: 1, part: ' ' }],
    ];
    for (const [left, right] of pairs) {
      assert.notDeepEqual(serializeAad(left), serializeAad(right));
      const dek = newDataKey();
      assert.throws(() => decrypt(encrypt(plaintext, left, dek), right, dek), rejectsWith('DECRYPT_FAILED'));
    }
  });

  it('refuses invalid AAD: encrypt throws, decrypt fails closed', () => {
    const dek = newDataKey();
    const sealed = encrypt(plaintext, aad, dek);
    for (const version of [-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
      assert.throws(() => encrypt(plaintext, { ...aad, version }, dek), TypeError);
      assert.throws(() => decrypt(sealed, { ...aad, version }, dek), rejectsWith('DECRYPT_FAILED'));
    }
  });

  it('unpackSealed rejects short input and unknown versions', () => {
    const packed = packSealed(encrypt(plaintext, aad, newDataKey()));
    for (const length of [0, 1, 13, 28]) {
      assert.throws(() => unpackSealed(packed.subarray(0, length)), rejectsWith('DECRYPT_FAILED'));
    }
    const future = Buffer.from(packed);
    future[0] = 2;
    assert.throws(() => unpackSealed(future), rejectsWith('DECRYPT_FAILED'));
  });

  it('accepts a blob of exactly header length (empty plaintext) and a truncated body fails', () => {
    const dek = newDataKey();
    const packed = packSealed(encrypt(Buffer.alloc(0), aad, dek));
    assert.equal(packed.length, 29);
    assert.equal(decrypt(unpackSealed(packed), aad, dek).length, 0);
    const full = packSealed(encrypt(plaintext, aad, dek));
    assert.throws(() => decrypt(unpackSealed(full.subarray(0, full.length - 1)), aad, dek), rejectsWith('DECRYPT_FAILED'));
  });

  it('leaks no plaintext in the error, its message or its cause', () => {
    const dek = newDataKey();
    const sealed = encrypt(plaintext, aad, dek);
    const tampered = copy(sealed);
    tampered.tag[0] = (tampered.tag[0] ?? 0) ^ 1;
    try {
      decrypt(tampered, aad, dek);
      assert.fail('decrypt should have thrown');
    } catch (err) {
      assert.ok(isAstryError(err, 'DECRYPT_FAILED'));
      assert.ok(!inspect(err, { depth: 10, showHidden: true }).includes('revenue'));
    }
  });
});

describe('local key file provider', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'astry-vault-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a 32-byte key (file 0600, directory 0700) and reopens the same key', async () => {
    const path = join(dir, 'fresh', 'nested', 'kek.key');
    const provider = await LocalKeyFileProvider.open(path);
    assert.match(provider.keyId, /^local:[0-9a-f]{16}$/);
    const fileStat = await stat(path);
    assert.equal(fileStat.size, 32);
    assert.equal(fileStat.mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'fresh', 'nested'))).mode & 0o777, 0o700);
    assert.equal((await LocalKeyFileProvider.open(path)).keyId, provider.keyId);
    assert.deepEqual(await readdir(join(dir, 'fresh', 'nested')), ['kek.key']);
  });

  it('wraps and unwraps a data key bound to its context', async () => {
    const provider = await LocalKeyFileProvider.open(join(dir, 'wrap.key'));
    const dek = newDataKey();
    const { wrapped, keyId } = await provider.wrap(dek, 'ws-1/doc-1');
    assert.equal(keyId, provider.keyId);
    assert.ok(!wrapped.includes(dek));
    assert.deepEqual(await provider.unwrap(wrapped, provider.keyId, 'ws-1/doc-1'), dek);
  });

  it('refuses to unwrap under the wrong context, after tampering or truncation', async () => {
    const provider = await LocalKeyFileProvider.open(join(dir, 'context.key'));
    const { wrapped } = await provider.wrap(newDataKey(), 'ws-1/doc-1');
    await assert.rejects(provider.unwrap(wrapped, provider.keyId, 'ws-1/doc-2'), rejectsWith('DECRYPT_FAILED'));
    await assert.rejects(provider.unwrap(wrapped, provider.keyId, ''), rejectsWith('DECRYPT_FAILED'));
    for (let index = 0; index < wrapped.length; index++) {
      const tampered = Buffer.from(wrapped);
      tampered[index] = (tampered[index] ?? 0) ^ 0x01;
      await assert.rejects(provider.unwrap(tampered, provider.keyId, 'ws-1/doc-1'), rejectsWith('DECRYPT_FAILED'));
    }
    await assert.rejects(provider.unwrap(wrapped.subarray(0, wrapped.length - 1), provider.keyId, 'ws-1/doc-1'), rejectsWith('DECRYPT_FAILED'));
    await assert.rejects(provider.unwrap(wrapped.subarray(0, 20), provider.keyId, 'ws-1/doc-1'), rejectsWith('DECRYPT_FAILED'));
  });

  it('a key wrapped under another KEK does not unwrap, even when the key id is forged', async () => {
    const first = await LocalKeyFileProvider.open(join(dir, 'first.key'));
    const second = await LocalKeyFileProvider.open(join(dir, 'second.key'));
    assert.notEqual(first.keyId, second.keyId);
    const { wrapped } = await first.wrap(newDataKey(), 'ctx');
    await assert.rejects(second.unwrap(wrapped, first.keyId, 'ctx'), rejectsWith('DECRYPT_FAILED'));
    await assert.rejects(second.unwrap(wrapped, second.keyId, 'ctx'), rejectsWith('DECRYPT_FAILED'));
  });

  it('refuses to wrap a data key of the wrong size', async () => {
    const provider = await LocalKeyFileProvider.open(join(dir, 'size.key'));
    await assert.rejects(provider.wrap(Buffer.alloc(16), 'ctx'), TypeError);
  });

  for (const size of [0, 16, 31, 33, 64]) {
    it(`refuses a key file of ${size} bytes and leaves it untouched`, async () => {
      const path = join(dir, `bad-size-${size}.key`);
      await writeFile(path, Buffer.alloc(size, 1), { mode: 0o600 });
      await assert.rejects(LocalKeyFileProvider.open(path), rejectsWith('CONFIG_INVALID'));
      assert.equal((await readFile(path)).length, size);
    });
  }

  for (const mode of [0o640, 0o604, 0o660, 0o644, 0o601]) {
    it(`refuses a key file with mode ${mode.toString(8)}`, async () => {
      const path = join(dir, `mode-${mode.toString(8)}.key`);
      await writeFile(path, Buffer.alloc(32, 1), { mode: 0o600 });
      await chmod(path, mode);
      await assert.rejects(LocalKeyFileProvider.open(path), rejectsWith('CONFIG_INVALID'));
    });
  }

  it('refuses a symlink and a directory in place of the key file', async () => {
    const target = join(dir, 'target.key');
    await writeFile(target, Buffer.alloc(32, 1), { mode: 0o600 });
    const link = join(dir, 'link.key');
    await symlink(target, link);
    await assert.rejects(LocalKeyFileProvider.open(link), rejectsWith('CONFIG_INVALID'));
    await assert.rejects(LocalKeyFileProvider.open(dir), rejectsWith('CONFIG_INVALID'));
  });

  it('concurrent opens in one process create exactly one key', async () => {
    const path = join(dir, 'race', 'kek.key');
    const providers = await Promise.all(Array.from({ length: 16 }, () => LocalKeyFileProvider.open(path)));
    assert.equal(new Set(providers.map((p) => p.keyId)).size, 1);
    assert.deepEqual(await readdir(join(dir, 'race')), ['kek.key']);
  });

  it('concurrent opens in separate processes create exactly one key', async () => {
    const path = join(dir, 'race-processes', 'kek.key');
    const moduleUrl = new URL('../vault/key-provider.ts', import.meta.url).href;
    const script = `const { LocalKeyFileProvider } = await import(${JSON.stringify(moduleUrl)});
      process.stdout.write((await LocalKeyFileProvider.open(process.argv[1])).keyId);`;
    const run = promisify(execFile);
    const outputs = await Promise.all(
      Array.from({ length: 6 }, () => run(process.execPath, ['--input-type=module', '-e', script, path])),
    );
    const ids = new Set(outputs.map((o) => o.stdout));
    assert.equal(ids.size, 1);
    assert.equal((await LocalKeyFileProvider.open(path)).keyId, [...ids][0]);
    assert.deepEqual(await readdir(join(dir, 'race-processes')), ['kek.key']);
  });
});
