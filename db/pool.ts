import pg from 'pg';

/** A pg pool. Vectors travel as their text form (pgvector.toSql, `::vector`), so no type registration is needed. */
export function createPool(connectionString: string, max = 8): pg.Pool {
  const pool = new pg.Pool({ connectionString, max });
  // An idle client whose connection dies emits 'error' on the pool; unhandled, it would crash the process.
  pool.on('error', (err) => console.warn(`postgres: idle connection failed: ${err.message}`));
  return pool;
}

/** Runs `work` inside one transaction; rolls back and rethrows on any error. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A connection that dies mid-transaction emits 'error' on the checked-out client: without a listener
  // the process would crash. The failing query rejects too, which is what the caller sees.
  let broken: Error | undefined;
  const onError = (err: Error) => (broken = err);
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackError: unknown) => {
      broken ??= rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    });
    throw err;
  } finally {
    client.off('error', onError);
    // Releasing with an error makes the pool discard the client instead of reusing a dead connection.
    client.release(broken);
  }
}

export type Queryable = pg.Pool | pg.PoolClient;
