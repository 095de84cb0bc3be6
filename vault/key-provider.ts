import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, mkdir, open as openFile, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AstryError } from '../core/errors.ts';
import { packSealed, seal, unpackSealed, unseal } from './envelope.ts';

const KEK_BYTES = 32;
const DEK_BYTES = 32;
/** Id of a local KEK: the first 16 hex digits of its SHA-256. */
const LOCAL_KEY_ID = /^local:([0-9a-f]{16})$/;
const ARCHIVE_SUFFIX = /^[0-9a-f]{16}$/;

/** A wrapped data key and the KEK that wrapped it: store both, together. */
export interface WrappedKey {
  wrapped: Buffer;
  /** Identifier of the KEK version used (the `kek_id` column). */
  keyId: string;
}

/**
 * Wraps and unwraps per-document data keys with a key-encryption key (KEK) the provider holds.
 * Shaped for cloud KMS adapters: `keyId` names the KEK version (a KMS Encrypt answers it too),
 * `context` is bound to the wrap (AAD here, an encryption context in a KMS), so a wrapped key only
 * opens for the same context.
 */
export interface KeyProvider {
  /**
   * Encrypts a data key under the current KEK, bound to `context`. The KEK id comes back with it
   * because the current KEK may change between calls (rotation): never pair a wrap with an id read elsewhere.
   */
  wrap(dek: Buffer, context: string): Promise<WrappedKey>;
  /** Decrypts a wrapped data key; throws DECRYPT_FAILED for an unknown key id, wrong context or tampering. */
  unwrap(wrapped: Buffer, keyId: string, context: string): Promise<Buffer>;
}

/** A provider that also tells which KEK `wrap` uses now (KEK rotation re-wraps everything else to it). */
export interface KeyRing extends KeyProvider {
  activeKeyId(): Promise<string>;
}

/** Where a key was read from: a file replaced by rename has another inode, an edited one another mtime. */
interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

const sameFile = (a: FileIdentity, b: FileIdentity) => a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;

/** The id of a local KEK. */
export function localKeyId(kek: Buffer): string {
  return `local:${createHash('sha256').update(kek).digest('hex').slice(0, 16)}`;
}

/** Where the KEK `keyId` is kept for unwrapping beside the active key file `path`: `<path>.<16 hex digits of the id>`. */
export function archivedKeyPath(path: string, keyId: string): string {
  const match = LOCAL_KEY_ID.exec(keyId);
  if (!match?.[1]) throw new AstryError('NOT_FOUND', `${keyId} is not a local key id (local: and 16 hex digits)`);
  return `${path}.${match[1]}`;
}

/** One KEK file of a local key ring. */
export interface LocalKeyFile {
  keyId: string;
  file: string;
  /** The key `wrap` uses (the file at ASTRY_KEK_FILE). */
  active: boolean;
}

/**
 * KEKs held in local files of exactly 32 random bytes, readable by their owner only (docs/keys.md):
 * the active one at `path` (ASTRY_KEK_FILE), which wraps, and every KEK that ever was active beside it
 * as `<path>.<16 hex digits of its id>`, which unwrap what they wrapped until retired. The active file
 * is looked at again before every wrap, so a rotation made by another process (`astry keys rotate`)
 * takes effect here at the next wrap; an unknown key id makes unwrap look for new files first.
 */
export class LocalKeyFileProvider implements KeyRing {
  readonly path: string;
  #active: { id: string; key: Buffer };
  #activeFile: FileIdentity;
  /** Every KEK seen, by id; keys are kept once loaded, so a retired file never breaks a running process. */
  readonly #ring = new Map<string, Buffer>();

  private constructor(path: string, kek: Buffer, file: FileIdentity) {
    this.path = path;
    this.#active = { id: localKeyId(kek), key: kek };
    this.#activeFile = file;
    this.#ring.set(this.#active.id, kek);
  }

  /** The KEK new wraps use, as last seen (`wrap` and `activeKeyId` look at the file again first). */
  get keyId(): string {
    return this.#active.id;
  }

  /** Opens the key file, creating it (dir 0700, file 0600) if missing; refuses a wrong size or loose permissions. */
  static async open(path: string): Promise<LocalKeyFileProvider> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    let loaded: { kek: Buffer; file: FileIdentity } | undefined;
    try {
      loaded = await readKeyFile(path);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    if (loaded === undefined) {
      await createKeyFile(path);
      loaded = await readKeyFile(path);
    }
    const provider = new LocalKeyFileProvider(path, loaded.kek, loaded.file);
    await provider.#loadArchived();
    return provider;
  }

  async wrap(dek: Buffer, context: string): Promise<WrappedKey> {
    if (dek.length !== DEK_BYTES) throw new TypeError(`data key must be ${DEK_BYTES} bytes`);
    await this.#refreshActive();
    // One snapshot: the id returned is the id of the key that sealed, whatever another call reloads meanwhile.
    const { id, key } = this.#active;
    return { wrapped: packSealed(seal(key, dek, Buffer.from(context, 'utf8'))), keyId: id };
  }

  async unwrap(wrapped: Buffer, keyId: string, context: string): Promise<Buffer> {
    let kek = this.#ring.get(keyId);
    if (kek === undefined && LOCAL_KEY_ID.test(keyId)) {
      // Rotated by another process since we loaded: pick up the new files.
      await this.#refreshActive();
      await this.#loadArchived();
      kek = this.#ring.get(keyId);
    }
    if (kek === undefined) {
      throw new AstryError('DECRYPT_FAILED', `data key is wrapped by ${keyId}, which is none of the local keys (${[...this.#ring.keys()].join(', ')})`);
    }
    const dek = unseal(kek, unpackSealed(wrapped), Buffer.from(context, 'utf8'));
    if (dek.length !== DEK_BYTES) {
      dek.fill(0);
      throw new AstryError('DECRYPT_FAILED', 'unwrapped data key has the wrong length');
    }
    return dek;
  }

  async activeKeyId(): Promise<string> {
    await this.#refreshActive();
    return this.#active.id;
  }

  /** Reloads the active key when its file was replaced (a rotation) since it was read. */
  async #refreshActive(): Promise<void> {
    // A vanished key file stops wrapping: data wrapped under a key that is nowhere on disk would be lost at the next restart.
    const current = await lstat(this.path).catch((cause: unknown) => {
      throw new AstryError('CONFIG_INVALID', `key file ${this.path} cannot be read`, { cause });
    });
    if (sameFile(current, this.#activeFile)) return;
    const { kek, file } = await readKeyFile(this.path);
    const id = localKeyId(kek);
    const known = this.#ring.get(id);
    if (known === undefined) this.#ring.set(id, kek);
    else kek.fill(0);
    this.#active = { id, key: known ?? kek };
    this.#activeFile = file;
  }

  /** Loads archived keys not yet in the ring; a file whose content does not match its name is CONFIG_INVALID. */
  async #loadArchived(): Promise<void> {
    for (const { keyId, file } of await archivedKeys(this.path)) {
      if (this.#ring.has(keyId)) continue;
      const { kek } = await readKeyFile(file);
      if (localKeyId(kek) !== keyId) {
        kek.fill(0);
        throw new AstryError('CONFIG_INVALID', `key file ${file} does not hold ${keyId}`);
      }
      this.#ring.set(keyId, kek);
    }
  }

  /** The active KEK file and the archived ones beside it. */
  static async list(path: string): Promise<LocalKeyFile[]> {
    const { kek } = await readKeyFile(path);
    const active = localKeyId(kek);
    kek.fill(0);
    const archived = await archivedKeys(path);
    return [
      { keyId: active, file: path, active: true },
      ...archived.filter((a) => a.keyId !== active).map((a) => ({ ...a, active: false })),
    ];
  }

  /**
   * Makes a new random KEK the active one. Every key is archived (`<path>.<id>`) before anything else
   * happens: first the current one, then the new one, and only then is the new one renamed over
   * `path`. A crash at any point leaves every key that ever wrapped anything on disk.
   */
  static async rotate(path: string): Promise<{ previous: string; next: string }> {
    const current = await readKeyFile(path);
    const previous = localKeyId(current.kek);
    current.kek.fill(0);
    await linkKey(path, archivedKeyPath(path, previous), previous);
    const kek = randomBytes(KEK_BYTES);
    const next = localKeyId(kek);
    const temporary = await writeTemporary(path, kek);
    try {
      await linkKey(temporary, archivedKeyPath(path, next), next);
      // rename() replaces the active file atomically: readers see the old key or the new one, whole.
      await rename(temporary, path);
      await syncDirectory(dirname(path));
    } finally {
      kek.fill(0);
      await unlink(temporary).catch(() => undefined);
    }
    return { previous, next };
  }

  /** Deletes the archived KEK `keyId`. Refuses the active one; the caller checks that nothing is wrapped by it any more. */
  static async retire(path: string, keyId: string): Promise<string> {
    const file = archivedKeyPath(path, keyId);
    const { kek } = await readKeyFile(path);
    const active = localKeyId(kek);
    kek.fill(0);
    if (active === keyId) throw new AstryError('CONFLICT', `${keyId} is the active key: rotate first`);
    const archived = await readKeyFile(file).catch((err: unknown) => {
      if (isErrno(err, 'ENOENT')) throw new AstryError('NOT_FOUND', `no key file ${file} for ${keyId}`);
      throw err;
    });
    const matches = localKeyId(archived.kek) === keyId;
    archived.kek.fill(0);
    if (!matches) throw new AstryError('CONFIG_INVALID', `key file ${file} does not hold ${keyId}`);
    await unlink(file);
    await syncDirectory(dirname(path));
    return file;
  }
}

/** Archived key files beside `path`, named by the key they should hold (not yet checked). */
async function archivedKeys(path: string): Promise<{ keyId: string; file: string }[]> {
  const prefix = `${basename(path)}.`;
  const names = await readdir(dirname(path));
  return names
    .filter((name) => name.startsWith(prefix) && ARCHIVE_SUFFIX.test(name.slice(prefix.length)))
    .sort()
    .map((name) => ({ keyId: `local:${name.slice(prefix.length)}`, file: join(dirname(path), name) }));
}

/** Hard-links the key file `from` as `to`, which must end up holding `keyId` (also when it existed). */
async function linkKey(from: string, to: string, keyId: string): Promise<void> {
  let created = true;
  try {
    await link(from, to);
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
    created = false;
  }
  const { kek } = await readKeyFile(to);
  const matches = localKeyId(kek) === keyId;
  kek.fill(0);
  if (!matches) {
    // `from` was replaced between reading it and linking it: another rotation ran at the same time.
    if (created) await unlink(to);
    throw new AstryError(created ? 'CONFLICT' : 'CONFIG_INVALID', created ? `key file ${from} changed during the rotation` : `key file ${to} does not hold ${keyId}`);
  }
  await syncDirectory(dirname(to));
}

/** Writes `kek` to a new private file beside `path` (0600, synced) and returns its name. */
async function writeTemporary(path: string, kek: Buffer): Promise<string> {
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await openFile(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(kek);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temporary;
}

async function syncDirectory(path: string): Promise<void> {
  const directory = await openFile(path, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/** Reads and checks a key file without following symlinks; a bad file is CONFIG_INVALID, never repaired. */
async function readKeyFile(path: string): Promise<{ kek: Buffer; file: FileIdentity }> {
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
    return { kek, file: { dev: stat.dev, ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs } };
  } finally {
    await handle.close();
  }
}

/**
 * Writes a new key to a private temporary file and hard-links it into place. link() fails if the
 * target exists, so concurrent creators agree on one key and no reader ever sees a partial file.
 */
async function createKeyFile(path: string): Promise<void> {
  const kek = randomBytes(KEK_BYTES);
  let temporary: string | undefined;
  try {
    temporary = await writeTemporary(path, kek);
    try {
      await link(temporary, path);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    await syncDirectory(dirname(path));
  } finally {
    kek.fill(0);
    if (temporary !== undefined) await unlink(temporary).catch(() => undefined);
  }
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && 'code' in err && err.code === code;
}
