import pg from 'pg';

/** A pg pool. Vectors travel as their text form (pgvector.toSql, `::vector`), so no type registration is needed. */
export function createPool(connectionString: string, max = 8): pg.Pool {
  return new pg.Pool({ connectionString, max });
}

/** Runs `work` inside one transaction; rolls back and rethrows on any error. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export type Queryable = pg.Pool | pg.PoolClient;
