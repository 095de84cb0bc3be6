import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** True while a process with this pid exists (signal 0 probes without signalling). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err instanceof Error && 'code' in err && err.code === 'EPERM';
  }
}

/**
 * This process's sandbox root, `<base>/worker-<pid>` (0700), after removing the roots of worker
 * processes that no longer exist: a crashed worker's sandboxes are destroyed at the next start,
 * while sandboxes of other live workers on the machine are left alone.
 */
export async function claimSandboxRoot(base: string): Promise<{ root: string; swept: number }> {
  await mkdir(base, { recursive: true, mode: 0o700 });
  let swept = 0;
  for (const entry of await readdir(base, { withFileTypes: true })) {
    const match = /^worker-(\d+)$/.exec(entry.name);
    if (!match || !entry.isDirectory()) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || alive(pid)) continue;
    await rm(join(base, entry.name), { recursive: true, force: true });
    swept++;
  }
  const root = join(base, `worker-${process.pid}`);
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { mode: 0o700 });
  return { root, swept };
}
