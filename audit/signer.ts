import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AstryError } from '../core/errors.ts';
import { fsyncDir } from './fsutil.ts';

/** Signs audit checkpoints. A cloud KMS signer implements the same interface. */
export interface CheckpointSigner {
  /** Identifies the key in every checkpoint: the first 16 hex digits of sha256(SPKI DER). */
  readonly keyId: string;
  readonly publicKey: KeyObject;
  sign(data: Buffer): Promise<Buffer>;
}

/** Stable id of a public key: the first 16 hex digits of sha256 over its SPKI DER encoding. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/** An Ed25519 key kept in a local PKCS#8 PEM file (0600), created on first use. */
export class LocalEd25519Signer implements CheckpointSigner {
  readonly keyId: string;
  readonly publicKey: KeyObject;
  readonly #privateKey: KeyObject;

  private constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
    this.publicKey = createPublicKey(privateKey);
    this.keyId = keyIdOf(this.publicKey);
  }

  /** Opens the key at `path`, creating it (and its directory, 0700) when missing. Refuses a key file others may read. */
  static async open(path: string): Promise<LocalEd25519Signer> {
    try {
      return new LocalEd25519Signer(await readKey(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
    let file;
    try {
      file = await open(path, 'wx', 0o600);
    } catch (err) {
      // Another process created it first: use theirs.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return new LocalEd25519Signer(await readKey(path));
      throw err;
    }
    try {
      await file.writeFile(pem);
      await file.sync();
    } finally {
      await file.close();
    }
    await fsyncDir(dirname(path));
    return new LocalEd25519Signer(privateKey);
  }

  /** The public key as SPKI PEM, for `astry audit verify` and auditors. */
  get publicKeyPem(): string {
    return this.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  async sign(data: Buffer): Promise<Buffer> {
    return sign(null, data, this.#privateKey);
  }
}

async function readKey(path: string): Promise<KeyObject> {
  const { mode } = await stat(path);
  if ((mode & 0o077) !== 0) {
    throw new AstryError('CONFIG_INVALID', `audit signing key ${path} is accessible to other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  }
  const key = createPrivateKey(await readFile(path));
  if (key.asymmetricKeyType !== 'ed25519') throw new AstryError('CONFIG_INVALID', `audit signing key ${path} is not an Ed25519 key`);
  return key;
}
