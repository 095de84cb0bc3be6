import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open as openFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AstryError } from '../core/errors.ts';
import { packSealed, seal, unpackSealed, unseal } from './envelope.ts';

const KEK_BYTES = 32;
const DEK_BYTES = 32;

/**
 * Wraps and unwraps per-document data keys with a key-encryption key (KEK) the provider holds.
 * Shaped for cloud KMS adapters: `keyId` names the KEK version, `context` is bound to the wrap
 * (AAD here, an encryption context in a KMS), so a wrapped key only opens for the same context.
 */
export interface KeyProvider {
  /** Identifier of the KEK used by `wrap`; stored next to each wrapped key. */
  readonly keyId: string;
  /** Encrypts a data key under the current KEK, bound to `context`. */
  wrap(dek: Buffer, context: string): Promise<Buffer>;
  /** Decrypts a wrapped data key; throws DECRYPT_FAILED for an unknown key id, wrong context or tampering. */
  unwrap(wrapped: Buffer, keyId: string, context: string): Promise<Buffer>;
}

/** A KEK held in a local file of exactly 32 random bytes, readable by its owner only. */
export class LocalKeyFileProvider implements KeyProvider {
  readonly keyId: string;
  readonly #kek: Buffer;

  private constructor(kek: Buffer) {
    this.#kek = kek;
    this.keyId = `local:${createHash('sha256').update(kek).digest('hex').slice(0, 16)}`;
  }

  /** Opens the key file, creating it (dir 0700, file 0600) if missing; refuses a wrong size or loose permissions. */
  static async open(path: string): Promise<LocalKeyFileProvider> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    try {
      return new LocalKeyFileProvider(await readKeyFile(path));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    await createKeyFile(path);
    return new LocalKeyFileProvider(await readKeyFile(path));
  }

  async wrap(dek: Buffer, context: string): Promise<Buffer> {
    if (dek.length !== DEK_BYTES) throw new TypeError(`data key must be ${DEK_BYTES} bytes`);
    return packSealed(seal(this.#kek, dek, Buffer.from(context, 'utf8')));
  }

  async unwrap(wrapped: Buffer, keyId: string, context: string): Promise<Buffer> {
    if (keyId !== this.keyId) {
      throw new AstryError('DECRYPT_FAILED', `data key is wrapped by ${keyId}, not by the local key ${this.keyId}`);
    }
    const dek = unseal(this.#kek, unpackSealed(wrapped), Buffer.from(context, 'utf8'));
    if (dek.length !== DEK_BYTES) {
      dek.fill(0);
      throw new AstryError('DECRYPT_FAILED', 'unwrapped data key has the wrong length');
    }
    return dek;
  }
}

/** Reads and checks the key file without following symlinks; a bad file is CONFIG_INVALID, never repaired. */
async function readKeyFile(path: string): Promise<Buffer> {
  const handle = await openFile(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch((err: unknown) => {
    if (isErrno(err, 'ELOOP')) throw new AstryError('CONFIG_INVALID', `key file ${path} is a symlink`, { cause: err });
    throw err;
  });
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new AstryError('CONFIG_INVALID', `key file ${path} is not a regular file`);
    if ((stat.mode & 0o077) !== 0) {
      throw new AstryError('CONFIG_INVALID', `key file ${path} is accessible by group or others; chmod 600 it`);
    }
    // One byte of slack detects a file that grew after stat.
    const buffer = Buffer.alloc(KEK_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (stat.size !== KEK_BYTES || bytesRead !== KEK_BYTES) {
      buffer.fill(0);
      throw new AstryError('CONFIG_INVALID', `key file ${path} must hold exactly ${KEK_BYTES} bytes`);
    }
    const kek = Buffer.from(buffer.subarray(0, KEK_BYTES));
    buffer.fill(0);
    return kek;
  } finally {
    await handle.close();
  }
}

/**
 * Writes a new key to a private temporary file and hard-links it into place. link() fails if the
 * target exists, so concurrent creators agree on one key and no reader ever sees a partial file.
 */
async function createKeyFile(path: string): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const kek = randomBytes(KEK_BYTES);
  try {
    const handle = await openFile(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(kek);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(temporary, path);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    const directory = await openFile(dirname(path), 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  } finally {
    kek.fill(0);
    await unlink(temporary).catch(() => undefined);
  }
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && 'code' in err && err.code === code;
}
