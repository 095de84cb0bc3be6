import { Client, Connection } from '@temporalio/client';
import type pg from 'pg';
import { env, type Env } from '../core/env.ts';
import { createPool } from '../db/pool.ts';
import { ensureWorkspace } from '../db/connections.ts';
import { LocalKeyFileProvider } from '../vault/key-provider.ts';
import type { KeyProvider } from '../vault/key-provider.ts';

/** What CLI commands talk to, built lazily from the environment and closed at exit. */
export class CliContext {
  readonly env: Env = env();
  #pool: pg.Pool | undefined;
  #temporal: Connection | undefined;
  #lazyTemporal: Connection | undefined;

  get pool(): pg.Pool {
    this.#pool ??= createPool(this.env.DATABASE_URL, 4);
    return this.#pool;
  }

  keys(): Promise<KeyProvider> {
    return LocalKeyFileProvider.open(this.env.ASTRY_KEK_FILE);
  }

  workspaceId(): Promise<string> {
    return ensureWorkspace(this.pool, this.env.ASTRY_WORKSPACE);
  }

  async temporal(): Promise<Client> {
    this.#temporal ??= await Connection.connect({ address: this.env.TEMPORAL_ADDRESS });
    return new Client({ connection: this.#temporal, namespace: this.env.TEMPORAL_NAMESPACE });
  }

  /** A client whose connection is made on first use (and retried): for servers that must start without Temporal. */
  lazyTemporal(): Client {
    this.#lazyTemporal ??= Connection.lazy({ address: this.env.TEMPORAL_ADDRESS });
    return new Client({ connection: this.#lazyTemporal, namespace: this.env.TEMPORAL_NAMESPACE });
  }

  async close(): Promise<void> {
    await this.#pool?.end();
    await this.#temporal?.close();
    await this.#lazyTemporal?.close();
  }
}
