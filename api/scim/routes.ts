/**
 * The SCIM 2.0 service provider (RFC 7643/7644) under /scim/v2, registered into the HTTP API.
 * Every route, discovery included, needs a workspace provisioning token (api/scim/tokens.ts); the
 * token decides the workspace. Bodies and answers are application/scim+json (application/json too).
 * Okta: https://developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20
 * Entra: https://learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { z } from 'zod';
import { authenticate } from './auth.ts';
import { errorBody, ScimError, toScimError } from './errors.ts';
import { createGroup, deleteGroup, getGroup, listGroups, patchGroup, replaceGroup } from './groups.ts';
import { listResponse, type ScimContext } from './resources.ts';
import { resourceTypes, schemaDocuments, serviceProviderConfig } from './schema.ts';
import { createUser, deleteUser, getUser, listUsers, patchUser, replaceUser } from './users.ts';

/** What the SCIM routes need. */
export interface ScimRouteDeps {
  pool: pg.Pool;
  /**
   * Public base URL of the SCIM endpoint as IdPs reach it, e.g. `https://astry.example.com/scim/v2`;
   * meta.location and $ref are built from it (default: the request's protocol and Host + /scim/v2).
   */
  baseUrl?: string;
  /** Largest request body in bytes (default 1 MiB): an Okta PUT of a large group carries every member. */
  bodyLimit?: number;
}

/** Where the routes live. */
export const SCIM_PREFIX = '/scim/v2';
const SCIM_JSON = 'application/scim+json; charset=utf-8';

function send(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).type(SCIM_JSON).send(body);
}

function sendError(reply: FastifyReply, err: ScimError): FastifyReply {
  if (err.status === 401) void reply.header('www-authenticate', 'Bearer realm="astry-scim"');
  return send(reply, err.status, errorBody(err));
}

const SearchRequest = z.object({
  attributes: z.array(z.string()).optional(),
  excludedAttributes: z.array(z.string()).optional(),
  filter: z.string().optional(),
  startIndex: z.number().int().optional(),
  count: z.number().int().optional(),
});

/** A SearchRequest body (RFC 7644 §3.4.3) as the query parameters of a GET. */
function searchQuery(body: unknown): Record<string, string> {
  const parsed = SearchRequest.safeParse(body);
  if (!parsed.success) throw new ScimError(400, 'invalidSyntax', 'a SearchRequest needs attributes/excludedAttributes as lists, filter as a string, startIndex/count as integers');
  const { attributes, excludedAttributes, filter, startIndex, count } = parsed.data;
  return {
    ...(attributes?.length ? { attributes: attributes.join(',') } : {}),
    ...(excludedAttributes?.length ? { excludedAttributes: excludedAttributes.join(',') } : {}),
    ...(filter === undefined ? {} : { filter }),
    ...(startIndex === undefined ? {} : { startIndex: String(startIndex) }),
    ...(count === undefined ? {} : { count: String(count) }),
  };
}

/** Registers /scim/v2 into `app` (pass it in buildApi's `routes`). */
export async function registerScimRoutes(app: FastifyInstance, deps: ScimRouteDeps): Promise<void> {
  await app.register(async (scim) => scimPlugin(scim, deps), { prefix: SCIM_PREFIX });
}

async function scimPlugin(scim: FastifyInstance, deps: ScimRouteDeps): Promise<void> {
  const bodyLimit = deps.bodyLimit ?? 1024 * 1024;
  const contexts = new WeakMap<FastifyRequest, ScimContext>();
  scim.addContentTypeParser('application/scim+json', { parseAs: 'string', bodyLimit }, scim.getDefaultJsonParser('error', 'error'));

  // Authentication comes first, for unknown paths too: nothing is revealed to a caller without a token.
  scim.addHook('onRequest', async (request) => {
    const caller = await authenticate(deps.pool, request.headers.authorization);
    const baseUrl = deps.baseUrl ?? `${request.protocol}://${request.host}${SCIM_PREFIX}`;
    contexts.set(request, { pool: deps.pool, workspaceId: caller.workspaceId, baseUrl });
  });

  scim.setErrorHandler((err, _request, reply) => {
    const known = toScimError(err);
    if (known) return sendError(reply, known);
    const status = typeof err === 'object' && err !== null && 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 400 && status < 500) {
      // Fastify's own refusals: malformed JSON, unsupported media type, body too large.
      const message = err instanceof Error ? err.message : 'bad request';
      return sendError(reply, new ScimError(status, status === 400 ? 'invalidSyntax' : undefined, message));
    }
    console.error('scim: unexpected failure', err);
    return sendError(reply, new ScimError(500, undefined, 'internal error'));
  });
  scim.setNotFoundHandler((request, reply) => sendError(reply, new ScimError(404, undefined, `no such endpoint: ${request.method} ${request.url.split('?')[0]}`)));

  const ctx = (request: FastifyRequest): ScimContext => {
    const found = contexts.get(request);
    if (found === undefined) throw new ScimError(401, undefined, 'authentication required');
    return found;
  };
  const doc = (description: string) => ({ schema: { description, tags: ['SCIM 2.0'], security: [{ bearer: [] }] }, bodyLimit });
  type WithId = { Params: { id: string } };

  scim.get('/ServiceProviderConfig', doc('RFC 7643 §5: supported features'), (req, reply) => send(reply, 200, serviceProviderConfig(ctx(req).baseUrl)));
  scim.get('/ResourceTypes', doc('RFC 7643 §6: User and Group'), (req, reply) => {
    const types = resourceTypes(ctx(req).baseUrl);
    return send(reply, 200, listResponse(types, types.length, 1));
  });
  scim.get<WithId>('/ResourceTypes/:id', doc('one resource type'), (req, reply) => {
    const found = resourceTypes(ctx(req).baseUrl).find((t) => t.id === req.params.id);
    if (found === undefined) throw new ScimError(404, undefined, `ResourceType ${req.params.id} not found`);
    return send(reply, 200, found);
  });
  scim.get('/Schemas', doc('RFC 7643 §7: the schemas served'), (req, reply) => {
    const schemas = schemaDocuments(ctx(req).baseUrl);
    return send(reply, 200, listResponse(schemas, schemas.length, 1));
  });
  scim.get<WithId>('/Schemas/:id', doc('one schema'), (req, reply) => {
    const found = schemaDocuments(ctx(req).baseUrl).find((s) => s.id.toLowerCase() === req.params.id.toLowerCase());
    if (found === undefined) throw new ScimError(404, undefined, `Schema ${req.params.id} not found`);
    return send(reply, 200, found);
  });

  // Discovery is read-only: other methods are 405 (RFC 7644 §4).
  for (const url of ['/ServiceProviderConfig', '/ResourceTypes', '/Schemas']) {
    scim.route({
      method: ['POST', 'PUT', 'PATCH', 'DELETE'], url, schema: { hide: true }, bodyLimit,
      handler: (req) => {
        throw new ScimError(405, undefined, `${req.method} is not allowed on ${url}`);
      },
    });
  }
  // RFC 7644 §3.4.3 search by POST, per resource type; across types it is not offered (501, as the RFC allows).
  scim.post('/Users/.search', doc('search users (a SearchRequest body)'), async (req, reply) => send(reply, 200, await listUsers(ctx(req), searchQuery(req.body))));
  scim.post('/Groups/.search', doc('search groups (a SearchRequest body)'), async (req, reply) => send(reply, 200, await listGroups(ctx(req), searchQuery(req.body))));
  scim.post('/.search', doc('search across resource types: not implemented'), () => {
    throw new ScimError(501, undefined, 'search across resource types is not supported: POST /Users/.search or /Groups/.search');
  });

  scim.get('/Users', doc('list or filter users (startIndex, count, filter, attributes, excludedAttributes)'), async (req, reply) => send(reply, 200, await listUsers(ctx(req), req.query)));
  scim.post('/Users', doc('provision a user (409 uniqueness on a taken userName or address)'), async (req, reply) => {
    const user = await createUser(ctx(req), req.body, req.query);
    return send(reply.header('location', `${ctx(req).baseUrl}/Users/${String(user.id)}`), 201, user);
  });
  scim.get<WithId>('/Users/:id', doc('one user'), async (req, reply) => send(reply, 200, await getUser(ctx(req), req.params.id, req.query)));
  scim.put<WithId>('/Users/:id', doc('replace a user'), async (req, reply) => send(reply, 200, await replaceUser(ctx(req), req.params.id, req.body, req.query)));
  scim.patch<WithId>('/Users/:id', doc('update a user (Okta and Entra PatchOp shapes; active:false deactivates at once)'), async (req, reply) =>
    send(reply, 200, await patchUser(ctx(req), req.params.id, req.body, req.query)),
  );
  scim.delete<WithId>('/Users/:id', doc('deprovision a user (refused from the next request on)'), async (req, reply) => {
    await deleteUser(ctx(req), req.params.id);
    return reply.code(204).send();
  });

  scim.get('/Groups', doc('list or filter groups'), async (req, reply) => send(reply, 200, await listGroups(ctx(req), req.query)));
  scim.post('/Groups', doc('create a group'), async (req, reply) => {
    const group = await createGroup(ctx(req), req.body, req.query);
    return send(reply.header('location', `${ctx(req).baseUrl}/Groups/${String(group.id)}`), 201, group);
  });
  scim.get<WithId>('/Groups/:id', doc('one group (excludedAttributes=members skips members)'), async (req, reply) => send(reply, 200, await getGroup(ctx(req), req.params.id, req.query)));
  scim.put<WithId>('/Groups/:id', doc('replace a group and its members'), async (req, reply) => send(reply, 200, await replaceGroup(ctx(req), req.params.id, req.body, req.query)));
  scim.patch<WithId>('/Groups/:id', doc('rename a group, add or remove members'), async (req, reply) => send(reply, 200, await patchGroup(ctx(req), req.params.id, req.body, req.query)));
  scim.delete<WithId>('/Groups/:id', doc('delete a group'), async (req, reply) => {
    await deleteGroup(ctx(req), req.params.id);
    return reply.code(204).send();
  });
}
