import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AstryError } from '../core/errors.ts';

/** AES-256-GCM parameters; the tag length is fixed so a forged short tag can never be accepted. */
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** First byte of a packed blob; bump it when the layout or algorithm changes. */
const PACK_VERSION = 1;
const PACK_HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES;

/** What a vault blob is bound to: decrypting it under any other value fails. */
export interface VaultAad {
  workspaceId: string;
  documentId: string;
  /** Document version (non-negative integer); an old blob cannot be replayed as a newer version. */
  version: number;
  /** Which part of the document this blob holds, e.g. "content" or "chunk:3". */
  part: string;
}

/** The three outputs of one AES-256-GCM encryption. */
export interface Sealed {
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

/** A fresh random 256-bit data key; callers zero it (`dek.fill(0)`) once it is wrapped and used. */
export function newDataKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/**
 * Canonical AAD bytes. JSON of a fixed-order array is unambiguous: every string is quoted and escaped,
 * so no value can smuggle a delimiter into a neighbouring field.
 */
export function serializeAad(aad: VaultAad): Buffer {
  const { workspaceId, documentId, version, part } = aad;
  if (typeof workspaceId !== 'string' || typeof documentId !== 'string' || typeof part !== 'string') {
    throw new TypeError('vault AAD fields workspaceId, documentId and part must be strings');
  }
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new TypeError('vault AAD version must be a non-negative safe integer');
  }
  return Buffer.from(JSON.stringify(['astry/v1', workspaceId, documentId, version, part]), 'utf8');
}

/** AES-256-GCM with caller-supplied AAD bytes; shared by documents (`encrypt`) and key wrapping. */
export function seal(key: Buffer, plaintext: Buffer, aad: Buffer): Sealed {
  if (key.length !== KEY_BYTES) throw new TypeError(`AES-256-GCM key must be ${KEY_BYTES} bytes`);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, ciphertext, tag: cipher.getAuthTag() };
}

/** Inverse of `seal`; any mismatch (key, AAD, iv, tag, ciphertext, lengths) throws DECRYPT_FAILED. */
export function unseal(key: Buffer, sealed: Sealed, aad: Buffer): Buffer {
  const { iv, ciphertext, tag } = sealed;
  // Checked before createDecipheriv: GCM itself would accept 4- to 15-byte tags, which are forgeable.
  if (
    !Buffer.isBuffer(key) || key.length !== KEY_BYTES ||
    !Buffer.isBuffer(iv) || iv.length !== IV_BYTES ||
    !Buffer.isBuffer(tag) || tag.length !== TAG_BYTES ||
    !Buffer.isBuffer(ciphertext)
  ) {
    throw new AstryError('DECRYPT_FAILED', 'vault blob could not be decrypted');
  }
  let head: Buffer | undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    head = decipher.update(ciphertext);
    const plaintext = Buffer.concat([head, decipher.final()]);
    head.fill(0);
    return plaintext;
  } catch (cause) {
    // GCM releases plaintext before the tag is checked: wipe it so nothing unauthenticated survives.
    head?.fill(0);
    throw new AstryError('DECRYPT_FAILED', 'vault blob could not be decrypted', { cause });
  }
}

/** Encrypts one part of one document version under its data key. */
export function encrypt(plaintext: Buffer, aad: VaultAad, dek: Buffer): Sealed {
  return seal(dek, plaintext, serializeAad(aad));
}

/** Decrypts a blob; throws DECRYPT_FAILED if the key, the AAD or any byte of the blob differs. */
export function decrypt(sealed: Sealed, aad: VaultAad, dek: Buffer): Buffer {
  let aadBytes: Buffer;
  try {
    aadBytes = serializeAad(aad);
  } catch (cause) {
    throw new AstryError('DECRYPT_FAILED', 'vault blob could not be decrypted', { cause });
  }
  return unseal(dek, sealed, aadBytes);
}

/** Compact storage form: version byte | iv (12) | tag (16) | ciphertext. */
export function packSealed(sealed: Sealed): Buffer {
  if (sealed.iv.length !== IV_BYTES || sealed.tag.length !== TAG_BYTES) {
    throw new TypeError('sealed value has a wrong iv or tag length');
  }
  return Buffer.concat([Buffer.of(PACK_VERSION), sealed.iv, sealed.tag, sealed.ciphertext]);
}

/** Parses `packSealed` output; short input or an unknown version throws DECRYPT_FAILED. */
export function unpackSealed(packed: Buffer): Sealed {
  if (!Buffer.isBuffer(packed) || packed.length < PACK_HEADER_BYTES || packed[0] !== PACK_VERSION) {
    throw new AstryError('DECRYPT_FAILED', 'vault blob is malformed');
  }
  // Copies, so the caller may reuse or wipe `packed` without touching the result.
  return {
    iv: Buffer.from(packed.subarray(1, 1 + IV_BYTES)),
    tag: Buffer.from(packed.subarray(1 + IV_BYTES, PACK_HEADER_BYTES)),
    ciphertext: Buffer.from(packed.subarray(PACK_HEADER_BYTES)),
  };
}
