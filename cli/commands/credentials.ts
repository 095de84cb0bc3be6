/**
 * Secrets on the command line: `astry connect …` and `astry connections rotate <connection>` read them
 * from a file or from standard input, never from an argument (arguments land in shell history and in
 * `ps` output), and never print them.
 */
import { open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { userInfo } from 'node:os';
import { rotateCredential } from '../../connectors/credentials.ts';
import { AstryError, isAstryError, type AstryErrorCode } from '../../core/errors.ts';
import { getConnection } from '../../db/connections.ts';
import { auditFromEnv } from '../../worker/runtime.ts';
import type { CliContext } from '../context.ts';

/** Options of `astry connections rotate`. */
export interface RotateOptions extends SecretSource {
  /** Check the secret against the source before storing it. */
  verify?: boolean;
}

/** A credential is at most this long (the admin API's limit too). */
const MAX_SECRET_BYTES = 16384;

/** The secret without the line break(s) editors and `echo` append. */
function secretOf(bytes: Buffer, from: string): string {
  if (bytes.length > MAX_SECRET_BYTES) throw new AstryError('CONFIG_INVALID', `${from} holds more than ${MAX_SECRET_BYTES} bytes: not a credential`);
  const secret = bytes.toString('utf8').replace(/[\r\n]+$/, '');
  if (secret.trim() === '') throw new AstryError('CONFIG_INVALID', `${from} holds no secret`);
  return secret;
}

async function readSecretFile(path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch((cause: unknown) => {
    throw new AstryError('CONFIG_INVALID', `cannot read the secret file ${path}`, { cause });
  });
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new AstryError('CONFIG_INVALID', `secret file ${path} is not a regular file`);
    if ((stat.mode & 0o077) !== 0) console.error(`astry: warning: ${path} is readable by group or others (chmod 600 it, or delete it now)`);
    return secretOf(await handle.readFile(), path);
  } finally {
    await handle.close();
  }
}

async function readSecretStdin(): Promise<string> {
  // Typed at a terminal the secret would be echoed on screen: refuse rather than show it.
  if (process.stdin.isTTY) throw new AstryError('CONFIG_INVALID', '--secret-stdin reads a pipe or a redirected file, not a terminal: use --secret-file');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_SECRET_BYTES) throw new AstryError('CONFIG_INVALID', `standard input holds more than ${MAX_SECRET_BYTES} bytes: not a credential`);
    chunks.push(buffer);
  }
  return secretOf(Buffer.concat(chunks), 'standard input');
}

const OUTCOME: Partial<Record<AstryErrorCode, string>> = {
  CONFIG_INVALID: 'invalid', NOT_FOUND: 'not_found', CONFLICT: 'conflict', SOURCE_AUTH_FAILED: 'rejected_by_source',
  SOURCE_UNAVAILABLE: 'source_unavailable', SOURCE_BAD_DATA: 'source_unavailable', SOURCE_RATE_LIMITED: 'source_unavailable',
};

/** `astry connections rotate <connection> --secret-file <path> | --secret-stdin [--verify]`. */
/** Where a command reads a secret from: exactly one of a file or standard input, never an argument. */
export interface SecretSource {
  secretFile?: string;
  secretStdin?: boolean;
  /** Operands the command did not expect: a secret typed as an argument by mistake (refused, never echoed). */
  extraArguments?: number;
}

/** The secret `command` was given (`astry connect …`, `astry connections rotate`), read and checked. */
export async function readSecret(command: string, opts: SecretSource): Promise<string> {
  if ((opts.extraArguments ?? 0) > 0) {
    throw new AstryError('CONFIG_INVALID', `${command} takes no secret as an argument (it would stay in your shell history; if that was a secret, it is there now): use --secret-file or --secret-stdin`);
  }
  if ((opts.secretFile === undefined) === (opts.secretStdin !== true)) {
    throw new AstryError('CONFIG_INVALID', 'give the secret with exactly one of --secret-file <path> or --secret-stdin');
  }
  return opts.secretFile === undefined ? readSecretStdin() : readSecretFile(opts.secretFile);
}

export async function rotateCommand(ctx: CliContext, name: string, opts: RotateOptions): Promise<void> {
  const secret = await readSecret('rotate', opts);
  const workspaceId = await ctx.workspaceId();
  const connection = await getConnection(ctx.pool, name, workspaceId);
  const audit = await auditFromEnv(ctx.env, ctx.pool);
  // The entry names the action and the connection id, never the secret, as the admin API's does.
  const record = (outcome: string) => audit.append({
    workspaceId, type: 'admin', actor: `cli:${userInfo().username}`, outcome,
    details: { via: 'cli', action: 'connection.credential.rotate', target: connection.id, verify: opts.verify === true },
  });
  try {
    const rotation = await rotateCredential({ pool: ctx.pool, keys: await ctx.keys() }, {
      workspaceId, connection: connection.id, secret, verify: opts.verify === true,
    }).catch(async (err: unknown) => {
      await record(isAstryError(err) ? OUTCOME[err.code] ?? 'failed' : 'failed');
      throw err;
    });
    await record('succeeded');
    const checked = rotation.verified ? `; ${rotation.verified.call} accepted it (account ${rotation.verified.account})` : '';
    console.log(`${rotation.name}: ${rotation.source} credential replaced at ${rotation.rotatedAt.toISOString()}${checked}; the next sync uses it`);
  } finally {
    await audit.close();
  }
}
