import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Starts a Node script as a child process (so a test can SIGKILL it) and waits for `readyLine` on its stdout. */
export async function spawnReady(script: string, env: NodeJS.ProcessEnv, readyLine: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  while (!out.includes(readyLine)) {
    if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}`);
    await sleep(50);
  }
  return child;
}

const syncWorkerScript = fileURLToPath(new URL('./worker-process.ts', import.meta.url));

/** A Temporal sync worker (test/support/worker-process.ts) in its own process, on a harness's database, task queue and KEK. */
export function spawnSyncWorker(h: { db: { url: string }; taskQueue: string; kekFile: string }, extraEnv: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  return spawnReady(
    syncWorkerScript,
    { ...process.env, DATABASE_URL: h.db.url, ASTRY_TASK_QUEUE: h.taskQueue, ASTRY_KEK_FILE: h.kekFile, ...extraEnv },
    'worker ready',
  );
}

/**
 * The crash tests' middle: SIGKILLs `first` (a sync worker mid-run), starts a second sync worker on the
 * same queue and waits until the interrupted workflow completes on it; then stops the second worker.
 */
export async function killAndResume(
  h: { db: { url: string }; taskQueue: string; kekFile: string },
  first: ChildProcess,
  workflow: { result(): Promise<unknown> },
  /** Runs once the first worker is dead, before the second starts (e.g. to count what it stored). */
  whileDown: () => Promise<void> = async () => undefined,
): Promise<void> {
  first.kill('SIGKILL');
  await once(first, 'exit');
  await whileDown();
  const second = await spawnSyncWorker(h);
  try {
    await workflow.result();
  } finally {
    second.kill('SIGTERM');
    await once(second, 'exit');
  }
}

const cliScript = fileURLToPath(new URL('../../cli/astry.ts', import.meta.url));

/**
 * `astry …` in a child process on a harness's database, key file and workspace (`test`), with its
 * audit files under `stateDir`; stdout and stderr together, and the exit code.
 */
export async function runAstry(
  h: { db: { url: string }; kekFile: string },
  stateDir: string,
  args: readonly string[],
  stdin = '',
): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [cliScript, ...args], {
    env: {
      ...process.env, DATABASE_URL: h.db.url, ASTRY_KEK_FILE: h.kekFile, ASTRY_WORKSPACE: 'test',
      ASTRY_AUDIT_SIGNING_KEY: join(stateDir, 'audit.pem'), ASTRY_AUDIT_SPOOL_DIR: join(stateDir, 'cli-spool'), ASTRY_AUDIT_CHECKPOINT_DIR: join(stateDir, 'checkpoints'),
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  child.stdin.end(stdin);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, out };
}
