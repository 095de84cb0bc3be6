/** `astry keys list|rotate|retire`: the local key-encryption keys and their rotation (docs/keys.md). */
import { userInfo } from 'node:os';
import { AstryError } from '../../core/errors.ts';
import { listKeks, retireKek, rotateKek } from '../../vault/kek-rotation.ts';
import type { RewrapReport } from '../../vault/rewrap.ts';
import { auditFromEnv } from '../../worker/runtime.ts';
import type { CliContext } from '../context.ts';

/** Options of `astry keys rotate`. */
export interface KeysRotateOptions {
  /** Create no key: finish re-wrapping to the active one (after a stop or a crash). */
  resume?: boolean;
  /** Rows per batch (default 500). */
  batchSize?: string;
  /** Stop after this many batches; `--resume` continues. */
  maxBatches?: string;
}

function positive(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new AstryError('CONFIG_INVALID', `${name} must be a positive integer`);
  return n;
}

async function audited(ctx: CliContext, action: string, details: Record<string, unknown>): Promise<void> {
  const audit = await auditFromEnv(ctx.env, ctx.pool);
  try {
    await audit.append({
      workspaceId: await ctx.workspaceId(), type: 'admin', actor: `cli:${userInfo().username}`, outcome: 'succeeded',
      details: { via: 'cli', action, ...details },
    });
  } finally {
    await audit.close();
  }
}

/** `astry keys list`: every KEK, its file, whether it wraps new keys, and how many data keys it wraps. */
export async function listKeysCommand(ctx: CliContext): Promise<void> {
  const keys = await listKeks(ctx.pool, ctx.env.ASTRY_KEK_FILE);
  console.table(keys.map((k) => ({
    'key id': k.keyId,
    state: k.active ? 'active' : k.file === null ? 'MISSING FILE' : 'old (unwrap only)',
    'wrapped keys': Object.values(k.rows).reduce((a, b) => a + b, 0),
    file: k.file ?? '-',
  })));
}

function printReport(report: RewrapReport): number {
  console.table(report.tables.map((t) => ({
    table: t.table, 'already current': t.alreadyCurrent, 're-wrapped': t.rewrapped, 'changed meanwhile': t.changedConcurrently, failed: t.failed, remaining: t.remaining,
  })));
  for (const f of report.failures) console.log(`  failed: ${f.table} ${f.key} (under ${f.kekId}): ${f.reason}`);
  return report.tables.reduce((sum, t) => sum + t.remaining, 0);
}

/** `astry keys rotate [--resume] [--batch-size n] [--max-batches n]`. */
export async function rotateKeysCommand(ctx: CliContext, opts: KeysRotateOptions): Promise<void> {
  const batchSize = positive(opts.batchSize, '--batch-size');
  const maxBatches = positive(opts.maxBatches, '--max-batches');
  const rotation = await rotateKek(ctx.pool, ctx.env.ASTRY_KEK_FILE, {
    ...(opts.resume === true ? { resume: true } : {}),
    ...(batchSize === undefined ? {} : { batchSize }),
    ...(maxBatches === undefined ? {} : { maxBatches }),
  });
  const { report } = rotation;
  if (rotation.created !== null) console.log(`new key ${rotation.created} is active (was ${rotation.previous}); re-wrapping every data key under it`);
  else console.log(`re-wrapping the data keys not yet under the active key ${report.target}`);
  const remaining = printReport(report);
  await audited(ctx, rotation.created === null ? 'kek.rotate.resume' : 'kek.rotate', {
    keyId: report.target, ...(rotation.previous === null ? {} : { previous: rotation.previous }),
    rewrapped: report.tables.reduce((sum, t) => sum + t.rewrapped, 0), remaining, stopped: report.stopped,
  });
  if (remaining === 0) {
    console.log(`every wrapped key is under ${report.target}; old keys can be retired: astry keys list, then astry keys retire <key id>`);
  } else if (report.failures.length > 0) {
    console.log(`${remaining} wrapped keys are not under ${report.target}; the failed ones above cannot be unwrapped by any local key`);
    process.exitCode = 1;
  } else {
    console.log(`${remaining} wrapped keys are not under ${report.target} yet${report.stopped ? ' (stopped by --max-batches)' : ''}: run astry keys rotate --resume`);
  }
}

/** `astry keys retire <key id>`. */
export async function retireKeyCommand(ctx: CliContext, keyId: string): Promise<void> {
  const file = await retireKek(ctx.pool, ctx.env.ASTRY_KEK_FILE, keyId);
  await audited(ctx, 'kek.retire', { keyId });
  console.log(`retired ${keyId}: deleted ${file}`);
}
