/**
 * A SCIM endpoint on a fresh database for tests and the conformance run: the real routes in a
 * bare Fastify app (the lead's buildApi registers the same function), a workspace and its token.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { registerScimRoutes, SCIM_PREFIX } from '../../api/scim/routes.ts';
import { createScimToken } from '../../api/scim/tokens.ts';
import { ensureWorkspace } from '../../db/connections.ts';
import { freshDatabase, type TestDatabase } from '../support/database.ts';

export interface ScimStack {
  db: TestDatabase;
  app: FastifyInstance;
  workspaceId: string;
  token: string;
  /** e.g. http://127.0.0.1:41234/scim/v2 */
  baseUrl: string;
  /** One request with the workspace token (or `token`), JSON in and out. */
  request(method: string, path: string, body?: unknown, token?: string | null): Promise<ScimAnswer>;
  close(): Promise<void>;
}

export interface ScimAnswer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** Starts the SCIM routes on 127.0.0.1 with a fresh migrated database. */
export async function startScimStack(opts: { db?: TestDatabase; workspace?: string } = {}): Promise<ScimStack> {
  const db = opts.db ?? (await freshDatabase());
  const workspaceId = await ensureWorkspace(db.pool, opts.workspace ?? 'scim');
  const { token } = await createScimToken(db.pool, workspaceId, 'test');
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  await registerScimRoutes(app, { pool: db.pool });
  const origin = await app.listen({ host: '127.0.0.1', port: 0 });
  const baseUrl = `${origin}${SCIM_PREFIX}`;
  return {
    db, app, workspaceId, token, baseUrl,
    async request(method, path, body, as) {
      const bearer = as === undefined ? token : as;
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: {
          ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }),
          accept: 'application/scim+json',
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
    },
    async close() {
      await app.close();
      if (opts.db === undefined) await db.drop();
    },
  };
}
