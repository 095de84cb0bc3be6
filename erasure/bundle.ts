/**
 * The signed compliance bundle: a directory of manifest.json, manifest.sig (raw 64-byte Ed25519
 * signature over the exact bytes of manifest.json), pub.pem (the signer's SPKI public key, the
 * audit checkpoint key) and VERIFY.txt. It verifies offline with `astry erasure verify <dir>` or
 * with OpenSSL 3 alone (OPENSSL_VERIFY), and against the live audit chain with verifyAgainstChain.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkpointSignatureValid } from '../audit/checkpoint.ts';
import { keyIdOf, type CheckpointSigner } from '../audit/signer.ts';
import { verifyAudit } from '../audit/verify.ts';
import type { Queryable } from '../db/pool.ts';
import { ManifestSchema, type Manifest } from './manifest.ts';

export const BUNDLE_FILES = { manifest: 'manifest.json', signature: 'manifest.sig', publicKey: 'pub.pem', readme: 'VERIFY.txt' } as const;

/** Verifies a bundle with OpenSSL 3 alone, run inside the bundle directory. */
export const OPENSSL_VERIFY = `openssl pkeyutl -verify -pubin -inkey ${BUNDLE_FILES.publicKey} -rawin -in ${BUNDLE_FILES.manifest} -sigfile ${BUNDLE_FILES.signature}`;

/** A manifest with its signature and the public key that checks it. */
export interface SignedBundle {
  /** The exact signed bytes of manifest.json (UTF-8 JSON). */
  manifest: Buffer;
  signature: Buffer;
  publicKeyPem: string;
}

/** Signs the manifest's bytes (pretty JSON, one trailing newline) with the audit checkpoint key. */
export async function signManifest(signer: CheckpointSigner, manifest: Manifest): Promise<SignedBundle> {
  const bytes = Buffer.from(`${JSON.stringify(ManifestSchema.parse(manifest), null, 2)}\n`, 'utf8');
  return {
    manifest: bytes,
    signature: await signer.sign(bytes),
    publicKeyPem: signer.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function readme(manifest: Manifest): string {
  return [
    `Astry erasure bundle ${manifest.request.id}`,
    `subject ${manifest.subject.pseudonym}, completed ${manifest.completedAt}`,
    '',
    'Verify the signature (OpenSSL 3, in this directory):',
    `  ${OPENSSL_VERIFY}`,
    'or, with Astry:',
    '  astry erasure verify <this directory> [--public-key <published audit key.pem>] [--chain]',
    '',
    `Check that pub.pem is the published audit signing key: its key id is ${manifest.signer.keyId}`,
    '(first 16 hex digits of the sha256 of its DER SubjectPublicKeyInfo:',
    '  openssl pkey -pubin -in pub.pem -outform DER | sha256sum).',
    '',
  ].join('\n');
}

/** Writes the bundle into `dir` (created if missing). */
export async function writeBundle(dir: string, bundle: SignedBundle): Promise<void> {
  const manifest = ManifestSchema.parse(JSON.parse(bundle.manifest.toString('utf8')));
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFile(join(dir, BUNDLE_FILES.manifest), bundle.manifest);
  await writeFile(join(dir, BUNDLE_FILES.signature), bundle.signature);
  await writeFile(join(dir, BUNDLE_FILES.publicKey), bundle.publicKeyPem);
  await writeFile(join(dir, BUNDLE_FILES.readme), readme(manifest));
}

/** Reads a bundle directory (VERIFY.txt is informative and not read). */
export async function readBundle(dir: string): Promise<SignedBundle> {
  const [manifest, signature, publicKeyPem] = await Promise.all([
    readFile(join(dir, BUNDLE_FILES.manifest)),
    readFile(join(dir, BUNDLE_FILES.signature)),
    readFile(join(dir, BUNDLE_FILES.publicKey), 'utf8'),
  ]);
  return { manifest, signature, publicKeyPem };
}

/** Outcome of a verification: the manifest when every check passed, else the first failure. */
export type BundleVerdict = { ok: true; manifest: Manifest; keyId: string; trusted: boolean } | { ok: false; reason: string };

/**
 * Checks a bundle offline: the public key parses and is Ed25519; if `publicKey` is given (the
 * published audit key) the bundle's key is that one; the signature covers the manifest's exact
 * bytes; the manifest is well formed and names this signer; its audit checkpoint is signed by the
 * same key and covers the erasure's entry. `trusted` is false when no expected key was given.
 */
export function verifySignedBundle(bundle: SignedBundle, opts: { publicKey?: KeyObject | string } = {}): BundleVerdict {
  let key: KeyObject;
  try {
    key = createPublicKey(bundle.publicKeyPem);
  } catch {
    return { ok: false, reason: `${BUNDLE_FILES.publicKey} is not a public key` };
  }
  if (key.asymmetricKeyType !== 'ed25519') return { ok: false, reason: `${BUNDLE_FILES.publicKey} is not an Ed25519 key` };
  const keyId = keyIdOf(key);
  if (opts.publicKey !== undefined) {
    const expected = keyIdOf(typeof opts.publicKey === 'string' ? createPublicKey(opts.publicKey) : opts.publicKey);
    if (expected !== keyId) return { ok: false, reason: `signed by key ${keyId}, not by the expected key ${expected}` };
  }
  if (bundle.signature.length !== 64 || !verify(null, bundle.manifest, key, bundle.signature)) {
    return { ok: false, reason: `the signature does not match ${BUNDLE_FILES.manifest}` };
  }
  let parsed: ReturnType<typeof ManifestSchema.safeParse>;
  try {
    parsed = ManifestSchema.safeParse(JSON.parse(bundle.manifest.toString('utf8')));
  } catch {
    return { ok: false, reason: `${BUNDLE_FILES.manifest} is not JSON` };
  }
  if (!parsed.success) return { ok: false, reason: `${BUNDLE_FILES.manifest} is malformed: ${parsed.error.issues[0]?.message ?? 'invalid'}` };
  const manifest = parsed.data;
  if (manifest.signer.keyId !== keyId) return { ok: false, reason: `the manifest names signer ${manifest.signer.keyId}, the key is ${keyId}` };
  const { checkpoint, entry } = manifest.audit;
  if (!checkpointSignatureValid(checkpoint, key, keyId)) return { ok: false, reason: 'the audit checkpoint in the manifest is not signed by this key' };
  if (checkpoint.seq < entry.seq) return { ok: false, reason: `the audit checkpoint (seq ${checkpoint.seq}) does not cover the erasure entry (seq ${entry.seq})` };
  return { ok: true, manifest, keyId, trusted: opts.publicKey !== undefined };
}

/** verifySignedBundle on a bundle directory; an unreadable bundle is a failed verification. */
export async function verifyBundle(dir: string, opts: { publicKey?: KeyObject | string } = {}): Promise<BundleVerdict> {
  let bundle: SignedBundle;
  try {
    bundle = await readBundle(dir);
  } catch (err) {
    return { ok: false, reason: `bundle ${dir} is incomplete: ${err instanceof Error ? err.message : String(err)}` };
  }
  return verifySignedBundle(bundle, opts);
}

/**
 * With database access: the whole audit chain verifies, the checkpoint in the manifest signs the
 * chain's actual hash at its seq, and the entry at the manifest's seq is this erasure's.
 */
export async function verifyAgainstChain(
  db: Queryable,
  manifest: Manifest,
  opts: { publicKey: KeyObject | string; checkpointDir?: string },
): Promise<{ ok: true } | { ok: false; reason: string }> {
  const chain = await verifyAudit(db, opts);
  if (!chain.ok) return { ok: false, reason: `the audit chain is broken at entry ${chain.firstBrokenSeq}: ${chain.reason}` };
  const { checkpoint, entry } = manifest.audit;
  const { rows } = await db.query<{ seq: string; hash: Buffer; event_id: string; entry: { type?: string; details?: { requestId?: string } } }>(
    `SELECT seq, hash, event_id::text AS event_id, entry FROM audit_log WHERE seq = ANY($1::bigint[])`,
    [[checkpoint.seq, entry.seq]],
  );
  const at = (seq: number) => rows.find((r) => Number(r.seq) === seq);
  if (at(checkpoint.seq)?.hash.toString('hex') !== checkpoint.hash) return { ok: false, reason: `the chain's hash at seq ${checkpoint.seq} is not the one the manifest's checkpoint signs` };
  const own = at(entry.seq);
  if (own?.event_id !== entry.eventId || own.entry.type !== 'erasure' || own.entry.details?.requestId !== manifest.request.id) {
    return { ok: false, reason: `audit entry ${entry.seq} is not this erasure's` };
  }
  return { ok: true };
}
