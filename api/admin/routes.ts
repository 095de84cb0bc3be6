/**
 * The admin and compliance HTTP API under /v1/admin, registered into the HTTP API (buildApi's
 * `routes`). Every route names the one role it needs; the guard runs before the body is even parsed,
 * and every answer, refusals included, is audited before it leaves (docs/admin-api.md).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../../audit/log.ts';
import type { VerifyOptions } from '../../audit/verify.ts';
import { isAstryError, type AstryErrorCode } from '../../core/errors.ts';
import type { TokenVerifier } from '../../identity/verifier.ts';
import type { KeyProvider } from '../../vault/key-provider.ts';
import type pg from 'pg';
import { erasureStatus, requestErasure, verifyAuditTrail, type ComplianceRouteDeps } from './compliance.ts';
import {
  connectionErrors, listConnectionHealth, pauseConnection, rotateConnectionCredential, triggerConnectionSync, type ConnectionRouteDeps,
} from './connections.ts';
import { authorize, callerActor, recordCall, type AdminCall, type GuardDeps } from './guard.ts';
import { ADMIN_ROLE, COMPLIANCE_ROLE, DEFAULT_ROLES_CLAIM, type AdminRole } from './roles.ts';
import {
  ConnectionErrorsSchema, GetErasureSchema, ListConnectionsSchema, PauseSchema, ResumeSchema, RotateCredentialSchema, StartErasureSchema, TriggerSyncSchema,
  VerifyAuditSchema,
} from './schemas.ts';
import type { AdminTemporal } from './temporal.ts';

/** What the admin routes need. */
export interface AdminRouteDeps {
  pool: pg.Pool;
  /** The same verifier as /v1/ask's: one IdP, one audience. */
  verifier: TokenVerifier;
  workspaceId: string;
  /** Every admin call, allowed or refused, is appended here. */
  audit: AuditLog;
  /** Seals callers' identifiers under their subject keys (and resolves erasure subjects). */
  keys: KeyProvider;
  /** Access-token claim holding the caller's roles (ASTRY_ADMIN_ROLES_CLAIM; default `roles`). */
  rolesClaim?: string;
  /** Temporal, for sync, pause, resume and erasures; without it those routes answer 503 UNAVAILABLE. */
  temporal?: AdminTemporal;
  /** The key and checkpoint files GET /v1/admin/audit/verify checks the chain against. */
  auditVerify: VerifyOptions;
  /** Deadline of a Temporal call that changes something, in ms (default 20000: a triggered run may take seconds to show). */
  temporalTimeoutMs?: number;
  /** Failures of work done after an answer; default console.warn. */
  onWarning?: (message: string, err?: unknown) => void;
}

/** Where the routes live. */
export const ADMIN_PREFIX = '/v1/admin';

const STATUS: Partial<Record<AstryErrorCode, number>> = {
  UNAUTHENTICATED: 401, FORBIDDEN: 403, NOT_FOUND: 404, CONFLICT: 409, CONFIG_INVALID: 400, UNAVAILABLE: 503,
  // A credential check (PUT .../credential with verify): the source refused it, or could not be asked.
  SOURCE_AUTH_FAILED: 422, SOURCE_UNAVAILABLE: 502, SOURCE_BAD_DATA: 502, SOURCE_RATE_LIMITED: 503,
};

/** Registers /v1/admin into `app` (pass it in buildApi's `routes`). */
export async function registerAdminRoutes(app: FastifyInstance, deps: AdminRouteDeps): Promise<void> {
  await app.register(async (admin) => adminPlugin(admin, deps), { prefix: ADMIN_PREFIX });
}

async function adminPlugin(admin: FastifyInstance, deps: AdminRouteDeps): Promise<void> {
  const guardDeps: GuardDeps = { ...deps, rolesClaim: deps.rolesClaim ?? DEFAULT_ROLES_CLAIM };
  const temporalTimeoutMs = deps.temporalTimeoutMs ?? 20_000;
  const connections: ConnectionRouteDeps = { pool: deps.pool, workspaceId: deps.workspaceId, keys: deps.keys, temporal: deps.temporal, temporalTimeoutMs };
  const compliance: ComplianceRouteDeps = {
    pool: deps.pool, keys: deps.keys, workspaceId: deps.workspaceId, temporal: deps.temporal, temporalTimeoutMs,
    auditVerify: deps.auditVerify, onWarning: deps.onWarning ?? ((message, err) => console.warn(message, err ?? '')),
  };
  const calls = new WeakMap<FastifyRequest, AdminCall>();
  const callOf = (request: FastifyRequest): AdminCall => {
    const call = calls.get(request);
    // Only routes registered below exist here, and each one's guard records its call first.
    if (call === undefined) throw new Error(`admin route ${request.url} without a guard`);
    return call;
  };

  /** The route-level hook: names the action and lets the call through only with `role`. */
  const guard = (action: string, role: AdminRole) => async (request: FastifyRequest) => {
    // What was attempted on which id is recorded for refused calls too (ids only: see recordCall).
    const { params } = request;
    const id = typeof params === 'object' && params !== null && 'id' in params && typeof params.id === 'string' ? params.id : undefined;
    const call: AdminCall = { action, role, ...(id === undefined ? {} : { target: id }) };
    calls.set(request, call);
    await authorize(guardDeps, request.headers.authorization, call);
  };

  admin.setErrorHandler((err: FastifyError, request, reply) => {
    if (isAstryError(err)) {
      if (err.code === 'UNAUTHENTICATED') void reply.header('www-authenticate', 'Bearer realm="astry-admin"');
      return reply.code(STATUS[err.code] ?? 400).send({ error: err.code, message: err.message });
    }
    if (err.validation) return reply.code(400).send({ error: 'BAD_REQUEST', message: err.message });
    compliance.onWarning(`admin API: ${request.method} ${request.routeOptions.url ?? ''} failed`, err);
    return reply.code(500).send({ error: 'INTERNAL', message: 'internal error' });
  });

  // Every answer leaves an audit entry before it is sent, refusals and failures included. If the
  // entry cannot be stored (nor spooled), the caller is told so rather than answered as if audited.
  admin.addHook('onSend', async (request, reply, payload) => {
    const call = calls.get(request) ?? { action: 'unknown', role: ADMIN_ROLE };
    try {
      await recordCall(guardDeps, call, { method: request.method, route: request.routeOptions.url ?? request.url }, reply.statusCode);
      return payload;
    } catch (err) {
      compliance.onWarning(`admin API: ${call.action} could not be audited`, err);
      void reply.code(500);
      return JSON.stringify({ error: 'AUDIT_UNAVAILABLE', message: 'the call could not be audited' });
    }
  });

  admin.get('/connections', { schema: ListConnectionsSchema, onRequest: guard('connections.list', ADMIN_ROLE) }, () => listConnectionHealth(connections));

  admin.post<{ Params: { id: string } }>(
    '/connections/:id/sync',
    { schema: TriggerSyncSchema, onRequest: guard('connection.sync', ADMIN_ROLE) },
    async (request, reply) => reply.code(202).send(await triggerConnectionSync(connections, request.params.id)),
  );
  admin.post<{ Params: { id: string } }>(
    '/connections/:id/pause',
    { schema: PauseSchema, onRequest: guard('connection.pause', ADMIN_ROLE) },
    (request) => pauseConnection(connections, request.params.id, true),
  );
  admin.post<{ Params: { id: string } }>(
    '/connections/:id/resume',
    { schema: ResumeSchema, onRequest: guard('connection.resume', ADMIN_ROLE) },
    (request) => pauseConnection(connections, request.params.id, false),
  );
  admin.put<{ Params: { id: string }; Body: { secret: string; verify: boolean } }>(
    '/connections/:id/credential',
    { schema: RotateCredentialSchema, onRequest: guard('connection.credential.rotate', ADMIN_ROLE) },
    async (request, reply) => {
      await rotateConnectionCredential(connections, request.params.id, request.body);
      return reply.code(204).send();
    },
  );
  admin.get<{ Params: { id: string }; Querystring: { runs: number; limit: number } }>(
    '/connections/:id/errors',
    { schema: ConnectionErrorsSchema, onRequest: guard('connection.errors', ADMIN_ROLE) },
    (request) => connectionErrors(connections, request.params.id, request.query),
  );

  admin.post<{ Body: { subject: string; reason?: string; resync: boolean } }>(
    '/erasures',
    { schema: StartErasureSchema, onRequest: guard('erasure.start', COMPLIANCE_ROLE) },
    async (request, reply: FastifyReply) => {
      const call = callOf(request);
      // The requester is recorded (manifest, the erasure's audit entry) as their sealed actor, never in clear.
      const { actor } = await callerActor(guardDeps, call);
      const view = await requestErasure(compliance, { ...request.body, requestedBy: `api:${actor}` });
      call.target = view.requestId;
      return reply.code(view.status === 'completed' ? 200 : 202).send(view);
    },
  );
  admin.get<{ Params: { id: string } }>(
    '/erasures/:id',
    { schema: GetErasureSchema, onRequest: guard('erasure.status', COMPLIANCE_ROLE) },
    (request) => erasureStatus(compliance, request.params.id),
  );
  admin.get('/audit/verify', { schema: VerifyAuditSchema, onRequest: guard('audit.verify', COMPLIANCE_ROLE) }, () => verifyAuditTrail(compliance));
}
