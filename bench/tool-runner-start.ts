// Tool-runner start: spawn of the confined tool server (prlimit + bubblewrap + seccomp + node) until
// its hello, then close. Production binds the tool server with its types stripped on the host
// (sandbox/tool-server-js.ts); the baseline, measured in the same run and interleaved with it, binds
// the TypeScript source as before, so the confined node strips types in WebAssembly at every start.
// The landlock row is production under the Landlock confinement (prlimit + launcher + node), same run.
// Usage: node bench/tool-runner-start.ts [--runs 40]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { confinementCommand } from '../sandbox/confinement.ts';
import { ToolRunner } from '../sandbox/runner.ts';
import { buildSeccompProgram } from '../sandbox/seccomp.ts';
import { toolServerScript } from '../sandbox/tool-server-js.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '40' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new RangeError('--runs must be a positive integer');

const dir = mkdtempSync(join(tmpdir(), 'astry-bench-sandbox-'));
writeFileSync(join(dir, 'doc-001.txt'), 'hello from the benchmark\n');
const sandbox = { dir, files: [{ name: 'doc-001.txt', title: 'bench' }] };
const source = fileURLToPath(new URL('../sandbox/tool-server.ts', import.meta.url));

/** The production command with the TypeScript source bound instead of the stripped script. */
async function startBaseline(): Promise<void> {
  const command = confinementCommand({ confinement: 'bwrap', sandboxDir: dir, memoryBytes: 256 * 1024 * 1024, cpuSeconds: 10, allowProbe: false, seccompFd: 3 });
  const args = command.args.map((a) => (a === toolServerScript() ? source : a === '/astry/tool-server.mjs' ? '/astry/tool-server.mts' : a));
  const child = spawn(command.file, args, { env: {}, stdio: ['pipe', 'pipe', 'pipe', 'pipe'], detached: true });
  const seccomp = child.stdio[3];
  if (!seccomp || !('end' in seccomp)) throw new Error('no seccomp pipe');
  seccomp.end(buildSeccompProgram());
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('close', (code) => reject(new Error(`baseline exited ${code}`)));
  });
  const closed = new Promise((r) => child.once('close', r));
  if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  await closed;
}

async function startProduction(): Promise<void> {
  const runner = await ToolRunner.start(sandbox, { confinement: 'bwrap' });
  await runner.close();
}

async function startLandlock(): Promise<void> {
  const runner = await ToolRunner.start(sandbox, { confinement: 'landlock' });
  await runner.close();
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
const times: Record<'baseline' | 'production' | 'landlock', number[]> = { baseline: [], production: [], landlock: [] };
try {
  await startProduction(); // warm the page cache and the stripped script
  await startBaseline();
  await startLandlock();
  for (let i = 0; i < runs; i++) {
    for (const [name, start] of [['baseline', startBaseline], ['production', startProduction], ['landlock', startLandlock]] as const) {
      const t = performance.now();
      await start();
      times[name].push(performance.now() - t);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const summary = Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, { p50: Math.round(quantile(xs, 0.5)), p95: Math.round(quantile(xs, 0.95)) }]));
const ratioOf = (a: number[], b: number[]) => Math.round((quantile(a, 0.5) / quantile(b, 0.5)) * 100) / 100;
const ratio = ratioOf(times.production, times.baseline);
const landlockRatio = ratioOf(times.landlock, times.production);
console.log(`start → hello → close, ${runs} runs each, interleaved (ms): baseline (types stripped inside) p50 ${summary.baseline?.p50} p95 ${summary.baseline?.p95}; production (bwrap, stripped on the host) p50 ${summary.production?.p50} p95 ${summary.production?.p95}; landlock p50 ${summary.landlock?.p50} p95 ${summary.landlock?.p95}; production/baseline p50 ${ratio}; landlock/production p50 ${landlockRatio}`);
console.log(JSON.stringify({ bench: 'tool-runner-start', runs, cpus: cpus().length, loadAverage: loadavg().map((x) => Math.round(x * 100) / 100), ...summary, ratioP50: ratio, landlockToBwrapP50: landlockRatio }));
