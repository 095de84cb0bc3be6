import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
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
