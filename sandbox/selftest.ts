/**
 * The query worker's start-up check that confinement really works on this machine: a tool runner
 * over a throwaway sandbox must list its file, and from inside it the network (a TCP server this
 * process opens on loopback), the host's /etc/passwd and home directory must be out of reach and
 * the environment empty. The worker refuses to serve if this fails.
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { materialize, type Sandbox } from './materialize.ts';
import { ToolRunner } from './runner.ts';

export const CONFINEMENT_MECHANISM = 'bubblewrap namespaces (user, pid, net, ipc, uts, cgroup) + seccomp-bpf + rlimits';

/** Checks confinement end to end; never throws. */
export async function confinementSelfTest(): Promise<{ ok: true; mechanism: string } | { ok: false; reason: string }> {
  const root = await mkdtemp(join(tmpdir(), 'astry-selftest-'));
  const server = createServer((socket) => socket.destroy());
  let sandbox: Sandbox | undefined;
  let runner: ToolRunner | undefined;
  try {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('loopback server has no port');
    sandbox = await materialize(join(root, 'sandboxes'), [{ documentId: 'self-test', title: 'self-test', text: 'astry confinement self-test\n' }]);
    runner = await ToolRunner.start(sandbox, { allowProbe: true });
    const files = await runner.list();
    if (files.length !== 1 || files[0]?.name !== 'doc-001.txt') throw new Error('list did not return the one sandbox file');
    const tcp = await runner.probe({ kind: 'tcp', host: '127.0.0.1', port: address.port });
    if (tcp === 'connected') throw new Error('a TCP connection to the host loopback succeeded from inside');
    const passwd = await runner.probe({ kind: 'readFile', path: '/etc/passwd' });
    if (typeof passwd !== 'string' || passwd.startsWith('read')) throw new Error('/etc/passwd is readable from inside');
    const home = await runner.probe({ kind: 'readdir', path: homedir() });
    if (typeof home !== 'string' || home.startsWith('listed')) throw new Error('the host home directory is visible from inside');
    const env = await runner.probe({ kind: 'env' });
    const names = typeof env === 'object' && env !== null && 'env' in env && typeof env.env === 'object' && env.env !== null ? Object.keys(env.env) : ['?'];
    if (names.some((name) => name !== 'PWD')) throw new Error(`the environment inside is not empty: ${names.join(', ')}`);
    return { ok: true, mechanism: CONFINEMENT_MECHANISM };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    await runner?.close();
    await sandbox?.destroy();
    server.close();
    await rm(root, { recursive: true, force: true });
  }
}
