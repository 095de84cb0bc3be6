import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { LocalEd25519Signer } from '../audit/checkpoint.ts';
import { AuditLog } from '../audit/log.ts';
import { readSpool } from '../audit/spool.ts';
import { insertEntries } from '../audit/store.ts';
import { verifyAudit } from '../audit/verify.ts';
import { endAppPools, freshDatabase, type TestDatabase } from './support/database.ts';
import { TcpProxy } from './support/tcp-proxy.ts';

const OUTAGE_MS = Number(process.env.ASTRY_AUDIT_OUTAGE_MS ?? 30_000);
const APPENDERS = 20;

describe('audit trail through a Postgres outage', () => {
  let db: TestDatabase;
  let dir: string;
  let signer: LocalEd25519Signer;
  let app: pg.Pool;
  let owner: pg.Pool;

  before(async () => {
    db = await freshDatabase();
    app = new pg.Pool({ connectionString: db.url, max: 4 });
    owner = new pg.Pool({ connectionString: db.ownerUrl, max: 1 });
    dir = await mkdtemp(join(tmpdir(), 'astry-audit-outage-'));
    signer = await LocalEd25519Signer.open(join(dir, 'audit.pem'));
  });
  after(async () => {
    await endAppPools(owner, [app]);
    await owner.end();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  async function storedEvents(): Promise<Map<string, number>> {
    const { rows } = await app.query<{ key: string; n: string }>(
      `SELECT concat(entry->'details'->>'appender', '/', entry->'details'->>'n') AS key, count(*) AS n FROM audit_log GROUP BY 1`,
    );
    return new Map(rows.map((r) => [r.key, Number(r.n)]));
  }

  test(`Postgres stopped for ${OUTAGE_MS / 1000} s under load loses no entry`, async (t) => {
    const upstream = new URL(db.url);
    const proxy = await TcpProxy.start({ host: upstream.hostname, port: Number(upstream.port || 5432) });
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    const pool = new pg.Pool({ connectionString: viaProxy.toString(), max: 8, connectionTimeoutMillis: 2000 });
    const warnings: string[] = [];
    const spoolDir = join(dir, 'spool');
    const log = new AuditLog({
      pool, spoolDir, signer, checkpointDir: join(dir, 'checkpoints'), checkpointEvery: 100, drainIntervalMs: 250,
      onWarning: (m) => warnings.push(m),
    });
    type Phase = 'before' | 'outage' | 'after';
    let phase: Phase = 'before';
    let stop = false;
    const latencies: Record<Phase, number[]> = { before: [], outage: [], after: [] };
    const appended: string[] = [];
    const failures: unknown[] = [];
    const appenders = Array.from({ length: APPENDERS }, async (_, appender) => {
      for (let n = 0; !stop; n += 1) {
        const during = phase;
        const started = performance.now();
        try {
          await log.append({ workspaceId: String(1 + (appender % 4)), type: 'query', actor: `user-${appender}`, documentIds: [String(n)], outcome: 'answered', details: { appender, n } });
          appended.push(`${appender}/${n}`);
        } catch (err) {
          failures.push(err);
        }
        latencies[during].push(performance.now() - started);
        await sleep(5);
      }
    });

    await sleep(2000);
    phase = 'outage';
    proxy.cut();
    await sleep(OUTAGE_MS);
    proxy.restore();
    phase = 'after';
    await sleep(3000);
    stop = true;
    await Promise.all(appenders);
    const drainStarted = performance.now();
    for (let i = 0; (await readdir(spoolDir).catch(() => [])).length > 0; i += 1) {
      assert.ok(i < 100, 'the spool did not drain');
      await log.drain().catch(() => sleep(100));
    }
    const drainMs = performance.now() - drainStarted;
    await log.close();
    await endAppPools(owner, [pool]);
    await proxy.close();

    assert.deepEqual(failures, []);
    const stored = await storedEvents();
    const duplicates = [...stored].filter(([, n]) => n !== 1);
    const missing = appended.filter((key) => !stored.has(key));
    assert.deepEqual({ duplicates, missing }, { duplicates: [], missing: [] });
    assert.equal(stored.size, appended.length);
    const verified = await verifyAudit(app, { publicKey: signer.publicKey, checkpointDir: join(dir, 'checkpoints') });
    assert.equal(verified.ok, true, JSON.stringify(verified));
    assert.equal(verified.ok && verified.entries, appended.length);

    const stats = Object.fromEntries(
      Object.entries(latencies).map(([p, values]) => {
        const sorted = [...values].sort((a, b) => a - b);
        const at = (q: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
        return [p, { appends: sorted.length, p50: at(0.5), p99: at(0.99), max: at(1) }];
      }),
    );
    t.diagnostic(`appended ${appended.length}; latency ms ${JSON.stringify(stats)}; final drain ${Math.round(drainMs)} ms; checkpoints ${verified.ok && verified.checkpoints}; warnings ${warnings.length}`);
    assert.ok(latencies.outage.length > APPENDERS * 10, 'appends kept flowing during the outage');
    assert.ok(Math.max(...latencies.outage) < 1000, `max append latency during the outage: ${Math.max(...latencies.outage)} ms`);
  });

  test('a crashed process leaves a spool with a torn last line: the rest drains, once, after restart', async () => {
    const spoolDir = join(dir, 'crash-spool');
    // The child appends while Postgres is unreachable (nothing listens on port 9), tears a last
    // write, and dies by SIGKILL: exactly what a crash mid-write leaves on disk.
    const child = `
      import { readdir, appendFile } from 'node:fs/promises';
      import pg from 'pg';
      const { AuditLog } = await import(${JSON.stringify(new URL('../audit/log.ts', import.meta.url).href)});
      const { LocalEd25519Signer } = await import(${JSON.stringify(new URL('../audit/checkpoint.ts', import.meta.url).href)});
      const pool = new pg.Pool({ connectionString: 'postgres://nobody:x@127.0.0.1:9/none' });
      const signer = await LocalEd25519Signer.open(${JSON.stringify(join(dir, 'audit.pem'))});
      const log = new AuditLog({ pool, spoolDir: ${JSON.stringify(spoolDir)}, signer, checkpointDir: ${JSON.stringify(join(dir, 'crash-checkpoints'))}, onWarning: () => {} });
      for (let n = 0; n < 50; n += 1) await log.append({ workspaceId: '1', type: 'query', actor: 'crash', outcome: 'answered', details: { appender: 'crash', n } });
      const [file] = await readdir(${JSON.stringify(spoolDir)});
      await appendFile(${JSON.stringify(spoolDir)} + '/' + file, '{"id":"0b5d', 'utf8');
      process.kill(process.pid, 'SIGKILL');
    `;
    const proc = spawn(process.execPath, ['--input-type=module', '-e', child], { cwd: new URL('..', import.meta.url).pathname, stdio: ['ignore', 'inherit', 'inherit'] });
    const signal = await new Promise((resolve) => proc.on('exit', (_code, sig) => resolve(sig)));
    assert.equal(signal, 'SIGKILL');
    const [file] = await readdir(spoolDir);
    assert.match(file ?? '', new RegExp(`^${proc.pid}-`));

    // A drainer that crashed after inserting the first 20 spooled events but before removing the file.
    const spooled = await readSpool(join(spoolDir, file ?? ''), 0, true);
    assert.equal(spooled.entries.length, 50);
    assert.ok(spooled.tornBytes > 0);
    await insertEntries(app, spooled.entries.slice(0, 20), 5000);

    const before = (await storedEvents()).size;
    const warnings: string[] = [];
    const log = new AuditLog({ pool: app, spoolDir, signer, checkpointDir: join(dir, 'checkpoints'), onWarning: (m) => warnings.push(m) });
    assert.equal(await log.drain(), 30);
    await log.close();
    assert.deepEqual(await readdir(spoolDir), []);
    assert.equal(warnings.filter((w) => /torn last line \(11 bytes\)/.test(w)).length, 1, warnings.join('\n'));
    const stored = await storedEvents();
    assert.equal(stored.size - before, 50 - 20);
    for (let n = 0; n < 50; n += 1) assert.equal(stored.get(`crash/${n}`), 1, `crash/${n}`);
    assert.equal((await verifyAudit(app, { publicKey: signer.publicKey })).ok, true);
  });
});
