import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import { env } from '../core/env.ts';

const schemaDir = fileURLToPath(new URL('../schema', import.meta.url));

/** Applies (or rolls back) the SQL migrations in schema/ with node-pg-migrate. */
export async function migrate(databaseUrl: string, direction: 'up' | 'down' = 'up'): Promise<void> {
  await runner({
    databaseUrl,
    dir: schemaDir,
    direction,
    migrationsTable: 'pgmigrations',
    count: direction === 'down' ? 1 : Infinity,
    log: () => undefined,
    noLock: false,
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const direction = process.argv[2] === 'down' ? 'down' : 'up';
  await migrate(env().ASTRY_MIGRATION_DATABASE_URL, direction);
  console.log(`migrations ${direction}: done`);
}
