/** JSON schemas of /v1/admin: request validation and the OpenAPI description at /openapi.json. */

export const ErrorBody = {
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string', description: 'stable error code' }, message: { type: 'string' } },
} as const;

/** Refusals and failures every admin route can answer with. */
const errors = (...extra: (400 | 404 | 409 | 422 | 502 | 503)[]) => ({
  401: { ...ErrorBody, description: 'no valid bearer token' },
  403: { ...ErrorBody, description: 'the caller lacks the role, or is no active user (one body for every reason)' },
  ...Object.fromEntries(extra.map((status) => [status, ErrorBody])),
});

const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;

export const ConnectionIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', description: 'connection id (digits), as GET /v1/admin/connections lists it' } },
} as const;

const LastRun = {
  type: ['object', 'null'],
  description: 'the most recent finished run; null before the first',
  required: ['workflowId', 'status', 'startedAt', 'finishedAt', 'counts', 'errors', 'failure'],
  properties: {
    workflowId: { type: 'string' },
    status: { type: 'string', enum: ['succeeded', 'failed'] },
    startedAt: dateTime,
    finishedAt: dateTime,
    counts: {
      type: 'object',
      required: ['indexed', 'unchanged', 'aclUpdated', 'deleted', 'chunks'],
      properties: {
        indexed: { type: 'integer' }, unchanged: { type: 'integer' }, aclUpdated: { type: 'integer' }, deleted: { type: 'integer' }, chunks: { type: 'integer' },
      },
    },
    errors: { type: 'integer', description: 'items that failed in the run (GET .../errors lists them)' },
    failure: { type: ['string', 'null'], description: 'why the run as a whole failed' },
  },
} as const;

const Schedule = {
  type: 'object',
  required: ['state', 'nextRunAt', 'runningWorkflowId'],
  properties: {
    state: { type: 'string', enum: ['active', 'paused', 'missing', 'unavailable'], description: 'the Temporal schedule; unavailable when Temporal did not answer' },
    nextRunAt: nullableDateTime,
    runningWorkflowId: { type: ['string', 'null'], description: 'the run in progress, if any' },
  },
} as const;

export const ListConnectionsSchema = {
  description: 'Connections and their sync health: paused, last finished run with counts and errors, next scheduled run. Role astry.admin.',
  tags: ['admin'],
  security: [{ bearer: [] }],
  response: {
    200: {
      type: 'object',
      required: ['connections'],
      properties: {
        connections: {
          type: 'array',
          items: {
            type: 'object',
            required: ['id', 'source', 'name', 'paused', 'documents', 'lastRun', 'schedule'],
            properties: {
              id: { type: 'string' }, source: { type: 'string', enum: ['slack', 'graph', 'drive'] }, name: { type: 'string' },
              paused: { type: 'boolean' }, documents: { type: 'integer' }, lastRun: LastRun, schedule: Schedule,
            },
          },
        },
      },
    },
    ...errors(503),
  },
} as const;

export const TriggerSyncSchema = {
  description: 'Start a sync now through the connection\'s schedule (overlap SKIP: a run already going is returned instead), like `astry sync --no-wait`. Role astry.admin.',
  tags: ['admin'],
  security: [{ bearer: [] }],
  params: ConnectionIdParams,
  response: {
    202: { type: 'object', required: ['connectionId', 'workflowId'], properties: { connectionId: { type: 'string' }, workflowId: { type: 'string' } } },
    ...errors(404, 409, 503),
  },
} as const;

const pauseSchema = (paused: boolean) => ({
  description: paused
    ? 'Pause scheduled syncs (the schedule and the connection together), like `astry pause`. Role astry.admin.'
    : 'Resume scheduled syncs, like `astry resume`. Role astry.admin.',
  tags: ['admin'],
  security: [{ bearer: [] }],
  params: ConnectionIdParams,
  response: {
    200: { type: 'object', required: ['connectionId', 'paused'], properties: { connectionId: { type: 'string' }, paused: { type: 'boolean' } } },
    ...errors(404, 409, 503),
  },
}) as const;
export const PauseSchema = pauseSchema(true);
export const ResumeSchema = pauseSchema(false);

export const RotateCredentialSchema = {
  description:
    'Replace the connection\'s source credential (Slack bot token, Graph client secret, Drive access token), like `astry connections rotate`: '
    + 'sealed under a fresh data key in one update. With `verify`, one authenticated call to the source first (Slack auth.test, the Graph '
    + 'token request, Admin SDK customers.get): 422 when the source refuses the secret, 409 when it belongs to another account than the '
    + 'one the connection syncs, 502/503 when the source cannot be asked; nothing is stored then. The secret is never echoed or audited. Role astry.admin.',
  tags: ['admin'],
  security: [{ bearer: [] }],
  params: ConnectionIdParams,
  body: {
    type: 'object',
    required: ['secret'],
    additionalProperties: false,
    properties: {
      secret: { type: 'string', minLength: 1, maxLength: 16384, description: 'the new credential: a bearer token, a client secret, or JSON {"access_token": …} for Drive' },
      verify: { type: 'boolean', default: false, description: 'check the secret against the source before storing it' },
    },
  },
  response: {
    204: { type: 'null', description: 'stored; the next sync uses it' },
    ...errors(400, 404, 409, 422, 502, 503),
  },
} as const;

export const ErrorsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    runs: { type: 'integer', minimum: 1, maximum: 20, default: 3, description: 'how many of the latest runs' },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200, description: 'most item errors returned, newest first' },
  },
} as const;

export const ConnectionErrorsSchema = {
  description: 'Item errors (bad file, oversize, extractor crash, source error) of the latest runs, newest first. Role astry.admin.',
  tags: ['admin'],
  security: [{ bearer: [] }],
  params: ConnectionIdParams,
  querystring: ErrorsQuery,
  response: {
    200: {
      type: 'object',
      required: ['connectionId', 'runs', 'errors', 'truncated'],
      properties: {
        connectionId: { type: 'string' },
        runs: {
          type: 'array',
          items: {
            type: 'object',
            required: ['workflowId', 'status', 'startedAt', 'finishedAt', 'errors', 'failure'],
            properties: {
              workflowId: { type: 'string' }, status: { type: 'string', enum: ['running', 'succeeded', 'failed'] },
              startedAt: dateTime, finishedAt: nullableDateTime, errors: { type: 'integer' }, failure: { type: ['string', 'null'] },
            },
          },
        },
        errors: {
          type: 'array',
          items: {
            type: 'object',
            required: ['workflowId', 'itemId', 'code', 'message', 'at'],
            properties: { workflowId: { type: 'string' }, itemId: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' }, at: dateTime },
          },
        },
        truncated: { type: 'boolean', description: 'more errors than `limit`' },
      },
    },
    ...errors(400, 404),
  },
} as const;

const ErasureStatus = {
  type: 'object',
  required: ['requestId', 'status'],
  properties: {
    requestId: { type: 'string' },
    status: { type: 'string', enum: ['running', 'completed', 'failed'] },
    joined: { type: 'boolean', description: 'POST only: an erasure of the same person was already running or done' },
    completedAt: dateTime,
    erased: { type: 'object', additionalProperties: { type: 'number' }, description: 'what was erased, per artifact class' },
    destroyedKeyIds: { type: 'array', items: { type: 'string' } },
    bundle: {
      type: 'object',
      description: 'the signed compliance bundle, as `astry erase` writes it: manifest.json, manifest.sig, pub.pem',
      required: ['manifest', 'signature', 'publicKeyPem'],
      properties: {
        manifest: { type: 'string', description: 'the exact signed bytes of manifest.json (UTF-8 JSON)' },
        signature: { type: 'string', description: 'base64 of the raw 64-byte Ed25519 signature (manifest.sig)' },
        publicKeyPem: { type: 'string', description: 'the audit signing key (pub.pem)' },
      },
    },
  },
} as const;

export const StartErasureSchema = {
  description: 'Erase a data subject (same as `astry erase --no-wait`); idempotent: a repeat returns the same request. Role astry.compliance.',
  tags: ['compliance'],
  security: [{ bearer: [] }],
  body: {
    type: 'object',
    required: ['subject'],
    additionalProperties: false,
    properties: {
      subject: { type: 'string', minLength: 1, maxLength: 320, description: 'gina@ex.com, email:gina@ex.com, or a source account such as slack:U0GINA' },
      reason: { type: 'string', minLength: 1, maxLength: 500, description: 'request reference for the signed manifest, e.g. a ticket; no personal data' },
      resync: { type: 'boolean', default: true, description: 'trigger the affected connections once the erasure completes (as `astry erase` does)' },
    },
  },
  response: { 200: ErasureStatus, 202: ErasureStatus, ...errors(400, 404, 503) },
} as const;

export const GetErasureSchema = {
  description: 'Status of an erasure request and, once completed, its signed bundle. Role astry.compliance.',
  tags: ['compliance'],
  security: [{ bearer: [] }],
  params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
  response: { 200: ErasureStatus, ...errors(404, 503) },
} as const;

export const VerifyAuditSchema = {
  description: 'Recompute the audit hash chain and check every signed checkpoint (same as `astry audit verify`). Role astry.compliance.',
  tags: ['compliance'],
  security: [{ bearer: [] }],
  response: {
    200: {
      type: 'object',
      required: ['ok'],
      properties: {
        ok: { type: 'boolean' },
        entries: { type: 'integer' },
        checkpoints: { type: 'integer' },
        firstBrokenSeq: { type: 'integer', description: 'when not ok: the first entry that cannot be trusted' },
        reason: { type: 'string' },
      },
    },
    ...errors(),
  },
} as const;
