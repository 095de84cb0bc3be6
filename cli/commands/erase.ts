import { createPublicKey, type KeyObject } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { LocalEd25519Signer } from '../../audit/signer.ts';
import { OPENSSL_VERIFY, verifyAgainstChain, verifyBundle, writeBundle } from '../../erasure/bundle.ts';
import { startErasure, triggerRescans } from '../../erasure/request.ts';
import { bundleOf } from '../../erasure/result.ts';
import type { CliContext } from '../context.ts';

/** Options of `astry erase`. */
export interface EraseOptions {
  reason?: string;
  /** Bundle directory (default ./erasure-<pseudonym prefix>). */
  out?: string;
  wait: boolean;
  /** Trigger the syncs that rebuild shared documents without the subject (default on). */
  resync: boolean;
}

/** `astry erase <subject>`: erase a person (email, canonical key or source account) and write the signed bundle. */
export async function eraseCommand(ctx: CliContext, subject: string, opts: EraseOptions): Promise<void> {
  const client = await ctx.temporal();
  const handle = await startErasure(
    { pool: ctx.pool, keys: await ctx.keys(), client, taskQueue: ctx.env.ASTRY_TASK_QUEUE },
    { workspaceId: await ctx.workspaceId(), subject, requestedBy: `cli:${userInfo().username}`, ...(opts.reason ? { reason: opts.reason } : {}) },
  );
  console.log(`erasure ${handle.requestId} ${handle.joined ? 'already requested: following it' : 'started'} (subject hmac-sha256:${handle.pseudonym.slice(0, 16)}…)`);
  if (!opts.wait) return;
  const result = await handle.result();
  const dir = resolve(opts.out ?? `erasure-${handle.pseudonym.slice(0, 12)}`);
  await writeBundle(dir, bundleOf(result));
  const erased = Object.entries(result.erased).map(([k, v]) => `${k} ${v}`).join(', ');
  console.log(`completed ${result.completedAt}: ${erased}; ${result.destroyedKeyIds.length} subject key(s) destroyed`);
  console.log(`signed bundle: ${dir}\n  verify: astry erasure verify ${dir}\n  or, in ${dir}: ${OPENSSL_VERIFY}`);
  if (opts.resync && result.rescanConnections.length > 0) {
    const triggered = await triggerRescans(client, result);
    console.log(`rebuilding shared documents without the subject: sync triggered for ${triggered.length} connection(s)`);
  }
}

/** Options of `astry erasure verify`. */
export interface VerifyBundleOptions {
  /** PEM file of the published audit signing key; default: the local signing key's public half, if present. */
  publicKey?: string;
  /** Also check the manifest's checkpoint and entry against the live audit chain. */
  chain: boolean;
}

async function trustedKey(ctx: CliContext, path: string | undefined): Promise<KeyObject | undefined> {
  if (path !== undefined) return createPublicKey(await readFile(path, 'utf8'));
  // Never create a signing key just to verify: only use one that exists.
  const exists = await access(ctx.env.ASTRY_AUDIT_SIGNING_KEY).then(() => true, () => false);
  return exists ? (await LocalEd25519Signer.open(ctx.env.ASTRY_AUDIT_SIGNING_KEY)).publicKey : undefined;
}

/** `astry erasure verify <bundle>`: signature, manifest, checkpoint (and optionally the chain); exit 1 on failure. */
export async function verifyErasureCommand(ctx: CliContext, dir: string, opts: VerifyBundleOptions): Promise<void> {
  const publicKey = await trustedKey(ctx, opts.publicKey);
  const verdict = await verifyBundle(dir, publicKey ? { publicKey } : {});
  if (!verdict.ok) {
    console.log(`bundle INVALID: ${verdict.reason}`);
    process.exitCode = 1;
    return;
  }
  const m = verdict.manifest;
  console.log(`bundle valid: erasure ${m.request.id} of ${m.subject.pseudonym}, completed ${m.completedAt}`);
  console.log(`signed by key ${verdict.keyId}${verdict.trusted ? ' (the expected audit key)' : ' — no expected key given: compare this key id with the published audit key'}`);
  console.log(`audit entry ${m.audit.entry.seq} covered by checkpoint ${m.audit.checkpoint.seq}`);
  if (!opts.chain) return;
  const chain = await verifyAgainstChain(ctx.pool, m, { publicKey: publicKey ?? (await readFile(resolve(dir, 'pub.pem'), 'utf8')), checkpointDir: ctx.env.ASTRY_AUDIT_CHECKPOINT_DIR });
  if (chain.ok) console.log('audit chain intact and holds this erasure at the signed position');
  else {
    console.log(`audit chain check FAILED: ${chain.reason}`);
    process.exitCode = 1;
  }
}
