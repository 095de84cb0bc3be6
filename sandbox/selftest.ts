/**
 * The query worker's start-up check that confinement really works on this machine: a tool runner
 * over a throwaway sandbox must list its file, and from inside it the network (a TCP server this
 * process opens on loopback), the host's /etc/passwd and home directory, this process's environment
 * in /proc and signalling this process must be out of reach, and the environment empty. The worker
 * refuses to serve if this fails for the confinement it uses; `chooseConfinement()` picks that one.
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AstryError } from '../core/errors.ts';
import type { Confinement } from './confinement.ts';
import { materialize, type Sandbox } from './materialize.ts';
import { ToolRunner } from './runner.ts';

export const CONFINEMENT_MECHANISMS: Readonly<Record<Confinement, string>> = {
  bwrap: 'bubblewrap namespaces (user, pid, net, ipc, uts, cgroup) + seccomp-bpf + rlimits',
  landlock: 'Landlock (filesystem, TCP, scopes) + seccomp-bpf (no sockets, no other processes) + no capabilities + rlimits',
};

/** Checks `confinement` end to end; never throws. */
export async function confinementSelfTest(confinement: Confinement = 'bwrap'): Promise<{ ok: true; mechanism: string } | { ok: false; reason: string }> {
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
    runner = await ToolRunner.start(sandbox, { confinement, allowProbe: true });
    const files = await runner.list();
    if (files.length !== 1 || files[0]?.name !== 'doc-001.txt') throw new Error('list did not return the one sandbox file');
    const tcp = await runner.probe({ kind: 'tcp', host: '127.0.0.1', port: address.port });
    if (tcp === 'connected') throw new Error('a TCP connection to the host loopback succeeded from inside');
    const passwd = await runner.probe({ kind: 'readFile', path: '/etc/passwd' });
    if (typeof passwd !== 'string' || passwd.startsWith('read')) throw new Error('/etc/passwd is readable from inside');
    const home = await runner.probe({ kind: 'readdir', path: homedir() });
    if (typeof home !== 'string' || home.startsWith('listed')) throw new Error('the host home directory is visible from inside');
    const environ = await runner.probe({ kind: 'readFile', path: `/proc/${process.pid}/environ` });
    if (typeof environ !== 'string' || environ.startsWith('read')) throw new Error("the worker's environment is readable from inside");
    const signal = await runner.probe({ kind: 'signal', pid: process.pid, signal: 0 });
    if (signal === 'signalled') throw new Error('the worker can be signalled from inside');
    const env = await runner.probe({ kind: 'env' });
    const names = typeof env === 'object' && env !== null && 'env' in env && typeof env.env === 'object' && env.env !== null ? Object.keys(env.env) : ['?'];
    if (names.some((name) => name !== 'PWD')) throw new Error(`the environment inside is not empty: ${names.join(', ')}`);
    return { ok: true, mechanism: CONFINEMENT_MECHANISMS[confinement] };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    await runner?.close();
    await sandbox?.destroy();
    server.close();
    await rm(root, { recursive: true, force: true });
  }
}

/** What ASTRY_CONFINEMENT may ask for: a mechanism, or the first that passes its self-test. */
export type ConfinementPreference = Confinement | 'auto';

/**
 * The confinement the worker should pass to every ToolRunner: `preference` if its self-test passes;
 * for 'auto', bubblewrap if it passes (the stronger walls: namespaces), else Landlock. Throws
 * CONFINEMENT_UNAVAILABLE naming each failure otherwise: the worker must then not serve.
 */
export async function chooseConfinement(preference: ConfinementPreference = 'auto'): Promise<{ confinement: Confinement; mechanism: string }> {
  const failures: string[] = [];
  for (const confinement of preference === 'auto' ? (['bwrap', 'landlock'] as const) : [preference]) {
    const check = await confinementSelfTest(confinement);
    if (check.ok) return { confinement, mechanism: check.mechanism };
    failures.push(`${confinement}: ${check.reason}`);
  }
  throw new AstryError('CONFINEMENT_UNAVAILABLE', `no confinement passed its self-test (${failures.join('; ')})`);
}
