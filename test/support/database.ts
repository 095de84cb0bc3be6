import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { env } from '../../core/env.ts';
import { migrate } from '../../db/migrate.ts';
import { createPool } from '../../db/pool.ts';

/** A brand-new migrated database on the real Postgres, dropped by `drop()`. */
export interface TestDatabase {
  /** Connection string of the application role. */
  url: string;
  pool: pg.Pool;
  /** Connection string of the schema owner (for tests that must act as the owner, e.g. tampering). */
  ownerUrl: string;
  drop(): Promise<void>;
}

/** Creates and migrates the database as the schema owner, and hands out a pool of the application role. */
export async function freshDatabase(): Promise<TestDatabase> {
  const base = new URL(env().ASTRY_MIGRATION_DATABASE_URL);
  const app = new URL(env().DATABASE_URL);
  const name = `astry_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name} TEMPLATE template1`);
  await admin.end();
  const ownerUrl = new URL(base);
  ownerUrl.pathname = `/${name}`;
  await migrate(ownerUrl.toString());
  const url = new URL(app);
  url.pathname = `/${name}`;
  const pool = createPool(url.toString());
  return {
    url: url.toString(),
    pool,
    ownerUrl: ownerUrl.toString(),
    async drop() {
      await pool.end();
      const client = new pg.Client({ connectionString: base.toString() });
      await client.connect();
      try {
        // Backends of the app role may still be exiting; FORCE ends them (astry is granted astry_app).
        for (let attempt = 1; ; attempt++) {
          try {
            await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
            break;
          } catch (err) {
            if (attempt >= 5) throw err;
            await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
          }
        }
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * Ends app-role pools and waits until their backends have exited: TestDatabase.drop() runs DROP
 * DATABASE WITH (FORCE) as the owner, which may not terminate another role's backends, so one
 * still exiting makes the drop fail (and leaves its client open, hanging the test process).
 */
export async function endAppPools(owner: pg.Pool, pools: pg.Pool[]): Promise<void> {
  for (const pool of pools) await pool.end();
  for (let i = 0; i < 200; i += 1) {
    const { rows } = await owner.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND usename = 'astry_app'`,
    );
    if (rows[0]?.n === 0) return;
    await sleep(50);
  }
}
