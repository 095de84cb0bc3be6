import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { refusalAuditFields } from '../erasure/personal.ts';
import type { KeyProvider } from '../vault/key-provider.ts';

const keys: KeyProvider = {
  wrap: () => Promise.reject(new Error('no KEK in this test')),
  unwrap: () => Promise.reject(new Error('no KEK in this test')),
};

describe('refusal audit fields fail closed: withheld, never in clear, never thrown', () => {
  // A "database" that accepts connections and never answers: every query hangs.
  let silent: Server;
  const sockets = new Set<Socket>();
  let port = 0;
  before(async () => {
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    port = typeof address === 'object' && address !== null ? address.port : 0;
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  for (const [name, url] of [
    ['Postgres down', () => 'postgres://astry@127.0.0.1:1/astry'],
    ['Postgres hanging', () => `postgres://astry@127.0.0.1:${port}/astry`],
  ] as const) {
    test(`${name}: a canonical user's and an unknown asker's refusals are still recordable, naming no one`, async () => {
      const pool = new pg.Pool({ connectionString: url(), connectionTimeoutMillis: 10_000 });
      pool.on('error', () => undefined);
      try {
        const started = performance.now();
        const [user, stranger] = await Promise.all([
          refusalAuditFields(pool, keys, 'ws', { principalId: 42 }, { actor: 'principal:42', slackUserId: 'U0DAVE' }),
          refusalAuditFields(pool, keys, 'ws', { identifier: 'slack:U0XENA' }, { slackUserId: 'U0XENA' }),
        ]);
        assert.ok(performance.now() - started < 5000, 'within the 2 s key timeout, not the connection timeout');
        assert.deepEqual(user, { actor: 'personal-withheld:key-unavailable' });
        assert.deepEqual(stranger, { actor: 'personal-withheld:pseudonym-unavailable' });
      } finally {
        await Promise.race([pool.end(), new Promise((resolve) => setTimeout(resolve, 100))]);
      }
    });
  }
});
