// Drive sync benchmark on a large seeded customer: a full sync (listing + permissions + export or
// download + embed), an incremental run with no change, one with ~1% of files edited, and a
// permission-only run (sharing changed on N files: grants rewritten, nothing re-embedded), with the
// real googleapis clients against the emulator, real Postgres, Temporal and the embedding model.
// `--embedder hash` swaps the model for the tests' bag-of-words embedder (same pipeline otherwise:
// chunking, encryption, storage) to measure the sync machinery at scale apart from model speed.
// Usage: node bench/drive-sync.ts [--files 20000] [--acl-changes 2000] [--content-percent 1] [--embedder model|hash]
import { cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { RunSummary } from '../db/runs.ts';
import type { DriveEmulator } from '../fixtures/drive/emulator.ts';
import { buildText } from '../fixtures/slack/files.ts';
import { startDriveHarness } from '../test/support/drive-harness.ts';
import { HashEmbedder } from '../test/support/hash-embedder.ts';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '20000' },
    'acl-changes': { type: 'string', default: '2000' },
    'content-percent': { type: 'string', default: '1' },
    embedder: { type: 'string', default: 'model' },
  },
});

function positive(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`--${name} must be a positive number, got ${raw}`);
  return n;
}

const files = Math.round(positive('files', values.files));
const aclChanges = Math.round(positive('acl-changes', values['acl-changes']));
const contentPercent = positive('content-percent', values['content-percent']);
if (values.embedder !== 'model' && values.embedder !== 'hash') throw new RangeError(`--embedder must be model or hash, got ${values.embedder}`);
const embedderName = values.embedder;

const seconds = (ms: number): number => Math.round(ms) / 1000;
const perSecond = (n: number, ms: number): number => (ms > 0 ? Math.round((n / ms) * 10_000) / 10 : 0);

/** Drive/Admin calls the emulator answered since the last reset, by method. */
function calls(emulator: DriveEmulator): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of emulator.requests) out[r.method] = (out[r.method] ?? 0) + 1;
  emulator.resetRequests();
  return out;
}

async function timed(work: () => Promise<RunSummary>): Promise<{ run: RunSummary; ms: number; cpuSeconds: number }> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const run = await work();
  const used = process.cpuUsage(cpu);
  return { run, ms: performance.now() - start, cpuSeconds: Math.round((used.user + used.system) / 1e5) / 10 };
}

const setupStart = performance.now();
const h = await startDriveHarness({ fillerFiles: files, worker: false, config: { changesPageSize: 1000 } });
// Production pipeline batching (32 documents), not the harness's test setting.
delete h.deps.batchSize;
if (embedderName === 'hash') h.deps.embedder = new HashEmbedder();
await h.startWorker();
await h.deps.embedder.embed(['warm-up']);
const items = [...h.emulator.state.items()];
const fillers = items.filter((i) => i.id.startsWith('F-FILL-'));
console.log(`${items.length} items (${fillers.length} filler files, ${h.emulator.state.company.drives.length} shared drives); setup ${seconds(performance.now() - setupStart)} s`);

try {
  h.emulator.resetRequests();
  const full = await timed(() => h.sync());
  const fullCalls = calls(h.emulator);
  console.log(`full sync: ${seconds(full.ms)} s, ${full.run.indexed} documents, ${full.run.chunks} chunks, ${full.run.errors} errors`);

  const idle = await timed(() => h.sync());
  const idleCalls = calls(h.emulator);
  console.log(`incremental, no change: ${seconds(idle.ms)} s`);

  const edited = fillers.filter((_, i) => i % Math.max(1, Math.round(100 / contentPercent)) === 0);
  for (const item of edited) h.emulator.state.setContent(item.id, buildText(`Edited ${item.id}: a new paragraph about the quarterly plan.`));
  const content = await timed(() => h.sync());
  const contentCalls = calls(h.emulator);
  console.log(`incremental, ${edited.length} files edited: ${seconds(content.ms)} s`);

  const shared = fillers.filter((_, i) => i % Math.max(1, Math.floor(fillers.length / aclChanges)) === 0).slice(0, aclChanges);
  for (const item of shared) h.emulator.state.addPermission(item.id, { type: 'user', role: 'reader', emailAddress: 'gina@ex.com' });
  const acl = await timed(() => h.sync());
  const aclCalls = calls(h.emulator);
  const aclRate = perSecond(acl.run.aclUpdated, acl.ms);
  console.log(`permission-only, ${shared.length} files re-shared: ${seconds(acl.ms)} s, ${acl.run.aclUpdated} ACL updates, ${acl.run.indexed} re-indexed`);

  const report = {
    bench: 'drive-sync', embedder: embedderName, files, items: items.length, sharedDrives: h.emulator.state.company.drives.length,
    cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    full: { seconds: seconds(full.ms), indexed: full.run.indexed, chunks: full.run.chunks, errors: full.run.errors, docsPerSecond: perSecond(full.run.indexed, full.ms), cpuSeconds: full.cpuSeconds, calls: fullCalls },
    noChange: { seconds: seconds(idle.ms), indexed: idle.run.indexed, calls: idleCalls },
    contentEdits: { edited: edited.length, seconds: seconds(content.ms), indexed: content.run.indexed, filesPerSecond: perSecond(content.run.indexed, content.ms), calls: contentCalls },
    permissionOnly: {
      changed: shared.length, seconds: seconds(acl.ms), aclUpdated: acl.run.aclUpdated, indexed: acl.run.indexed, chunks: acl.run.chunks,
      itemsPerSecond: aclRate, itemsPerMinute: Math.round(aclRate * 60), anchorPerMinute: 800, calls: aclCalls,
    },
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  console.log('');
  console.log(`full sync                ${report.full.seconds} s  ${report.full.docsPerSecond} files/s  (${report.full.indexed} files, ${report.full.chunks} chunks)`);
  console.log(`incremental, no change   ${report.noChange.seconds} s  (${report.noChange.indexed} re-indexed)`);
  console.log(`incremental, ${contentPercent}% edited  ${report.contentEdits.seconds} s  (${report.contentEdits.indexed} of ${edited.length} re-indexed)`);
  console.log(`permission-only          ${report.permissionOnly.seconds} s  ${aclRate} items/s = ${report.permissionOnly.itemsPerMinute}/min (anchor 800/min); ${report.permissionOnly.indexed} re-embedded`);
  console.log(JSON.stringify(report));
} finally {
  await h.close();
}
