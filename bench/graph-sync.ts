// Graph sync benchmark on a large seeded tenant: full sync, an incremental run with no change and
// with ~1% of files edited, and permission-only changes (sharing changed on folders whose files
// inherit, and on single files) as items/s of ACL updates. Real Postgres, Temporal, model, HTTPS emulator.
// Usage: node bench/graph-sync.ts [--files 20000] [--folders 25] [--shared-files 500]
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { cpus, totalmem } from 'node:os';
import type { RunSummary } from '../db/runs.ts';
import { USER } from '../fixtures/graph/ids.ts';
import { startGraphHarness } from '../test/support/graph-harness.ts';

const { values } = parseArgs({ options: { files: { type: 'string', default: '20000' }, folders: { type: 'string', default: '25' }, 'shared-files': { type: 'string', default: '500' } } });
const files = Number(values.files);
const folders = Number(values.folders);
const sharedFiles = Number(values['shared-files']);
for (const [name, n] of [['files', files], ['folders', folders], ['shared-files', sharedFiles]] as const) {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer`);
}

const h = await startGraphHarness({ tenant: { files, fillerUsers: 20 } });
const state = h.emulator.state;
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

async function timed(label: string, change: () => void): Promise<{ label: string; seconds: number; run: RunSummary; requests: Record<string, number> }> {
  change();
  h.emulator.resetRequests();
  const start = performance.now();
  const run = await h.sync();
  const seconds = (performance.now() - start) / 1000;
  const requests: Record<string, number> = {};
  for (const r of h.emulator.requests) requests[r.route] = (requests[r.route] ?? 0) + 1;
  console.error(`${label}: ${round(seconds)} s`, run);
  return { label, seconds, run, requests };
}

try {
  const liveFiles = () => state.tenant.items.filter((i) => !i.folder && !i.deleted);
  const full = await timed('full', () => undefined);
  const noop = await timed('incremental, no change', () => undefined);
  const edited = liveFiles().filter((_, i) => i % 100 === 7);
  const incremental = await timed('incremental, 1% edited', () => edited.forEach((f, i) => state.editContent(f.id, `BENCH-EDIT-${i}`, 'edited for the benchmark')));

  // Permission-only: folders whose sharing changed (children inherit and are not reported), then single files.
  const teamDrives = state.tenant.sites.filter((s) => s.name.startsWith('team-')).map((s) => s.driveId);
  const targetFolders = state.tenant.items.filter((i) => i.folder && i.parentId !== null && teamDrives.includes(i.driveId) && !i.deleted).slice(0, folders);
  const inherited = await timed('sharing changed on folders', () =>
    targetFolders.forEach((f, i) => state.addPermission(f.id, state.userPermission(USER.carol, `bench-folder-${i}`))),
  );
  const singles = liveFiles().filter((f) => teamDrives.includes(f.driveId)).slice(-sharedFiles);
  const direct = await timed('sharing changed on files', () =>
    singles.forEach((f, i) => state.addPermission(f.id, state.userPermission(USER.gina, `bench-file-${i}`))),
  );

  const result = {
    machine: { cpus: cpus().length, memGiB: round(totalmem() / 2 ** 30) },
    files: liveFiles().length,
    full: { seconds: round(full.seconds), docsPerSecond: round(full.run.indexed / full.seconds), indexed: full.run.indexed, chunks: full.run.chunks, errors: full.run.errors, requests: full.requests },
    incrementalNoChange: { seconds: round(noop.seconds), requests: noop.requests },
    incrementalEdited: { seconds: round(incremental.seconds), edited: edited.length, indexed: incremental.run.indexed, docsPerSecond: round(incremental.run.indexed / incremental.seconds) },
    permissionOnlyFolders: {
      folders: targetFolders.length, seconds: round(inherited.seconds), aclUpdated: inherited.run.aclUpdated, reindexed: inherited.run.indexed,
      itemsPerSecond: round(inherited.run.aclUpdated / inherited.seconds), itemsPerMinute: Math.round((inherited.run.aclUpdated / inherited.seconds) * 60),
    },
    permissionOnlyFiles: {
      files: singles.length, seconds: round(direct.seconds), aclUpdated: direct.run.aclUpdated, reindexed: direct.run.indexed,
      itemsPerSecond: round(direct.run.aclUpdated / direct.seconds), itemsPerMinute: Math.round((direct.run.aclUpdated / direct.seconds) * 60),
    },
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  await h.close();
}
