// The benchmark's own database on the configured Postgres: created and migrated like a test database,
// kept with --keep-db so later runs can skip seeding (--reuse-db <name>).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { env } from '../../core/env.ts';
import { migrate } from '../../db/migrate.ts';
import { createPool } from '../../db/pool.ts';

export interface BenchDatabase {
  name: string;
  /** Pool of the application role: everything the query path does goes through it. */
  app: pg.Pool;
  appUrl: string;
  /** Pool of the schema owner: bulk load, index builds, VACUUM. */
  owner: pg.Pool;
  drop(): Promise<void>;
  close(): Promise<void>;
}

function urlFor(base: string, name: string): string {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Creates and migrates `astry_bench_<random>`, or opens an existing one by name. */
export async function openBenchDatabase(existing?: string): Promise<BenchDatabase> {
  const ownerBase = env().ASTRY_MIGRATION_DATABASE_URL;
  if (existing !== undefined && !/^astry_bench_[0-9a-f]+$/.test(existing)) throw new RangeError(`not a bench database name: ${existing}`);
  const name = existing ?? `astry_bench_${randomBytes(6).toString('hex')}`;
  if (existing === undefined) {
    const admin = new pg.Client({ connectionString: ownerBase });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name} TEMPLATE template1`);
    } finally {
      await admin.end();
    }
    await migrate(urlFor(ownerBase, name));
  }
  const appUrl = urlFor(env().DATABASE_URL, name);
  // Enough connections for recall runs, the in-process asks and the audit log at once.
  const app = createPool(appUrl, 10);
  const owner = createPool(urlFor(ownerBase, name), 2);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.all([app.end(), owner.end()]);
  };
  return {
    name, app, appUrl, owner, close,
    async drop() {
      await close();
      const admin = new pg.Client({ connectionString: ownerBase });
      await admin.connect();
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  };
}
