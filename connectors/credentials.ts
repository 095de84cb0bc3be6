/**
 * Replacing a connection's source credential (`astry connections rotate`, PUT
 * /v1/admin/connections/:id/credential), optionally after one cheap authenticated call to the source
 * with the new credential, so a credential the source refuses is never stored (docs/keys.md).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AstryError, isAstryError } from '../core/errors.ts';
import {
  getConnection, rotateConnectionSecret, syncedAccount, SlackConfigSchema, type Connection, type SecretRotation,
} from '../db/connections.ts';
import type { Queryable } from '../db/pool.ts';
import type { KeyProvider } from '../vault/key-provider.ts';
import { accessTokenOf, DriveConfigSchema } from './drive/config.ts';
import { DriveConnector } from './drive/connector.ts';
import { GraphConfigSchema } from './graph/config.ts';
import { GraphConnector } from './graph/connector.ts';
import { SlackConnector } from './slack/connector.ts';

/** What the source said about a credential it accepted. */
export interface CredentialCheck {
  /** The call made, e.g. `Slack auth.test`. */
  call: string;
  /** The account the credential belongs to: Slack team id, Google customer id, Entra tenant id. */
  account: string;
}

/** How long the source has to answer the check before it is SOURCE_UNAVAILABLE, in ms. */
const CHECK_TIMEOUT_MS = 15_000;
/** A check is one call, not a sync: two quick retries, then the caller hears about it. */
const CHECK_SLACK_RETRY = { retries: 2, factor: 2, minTimeout: 200, maxTimeout: 1000, randomize: true };
const CHECK_DRIVE_RETRY = { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 1000 };

function configOf<T>(connection: Connection, parse: (config: unknown) => { success: true; data: T } | { success: false }): T {
  const parsed = parse(connection.config);
  if (!parsed.success) throw new AstryError('CONFIG_INVALID', `connection ${connection.name} has an invalid ${connection.source} config`);
  return parsed.data;
}

async function check(connection: Connection, secret: string): Promise<CredentialCheck> {
  switch (connection.source) {
    case 'slack': {
      const config = configOf(connection, (c) => SlackConfigSchema.safeParse(c));
      // https://docs.slack.dev/reference/methods/auth.test: answers invalid_auth / token_revoked for a bad token.
      const slack = new SlackConnector({ token: secret, apiUrl: config.apiUrl, maxFileBytes: 1, retryConfig: CHECK_SLACK_RETRY });
      return { call: 'Slack auth.test', account: (await slack.team()).teamId };
    }
    case 'graph': {
      const config = configOf(connection, (c) => GraphConfigSchema.safeParse(c));
      const graph = new GraphConnector({
        graphUrl: config.graphUrl, authorityUrl: config.authorityUrl, tenantId: config.tenantId, clientId: config.clientId,
        clientSecret: secret, maxFileBytes: 1, ...(config.caPem ? { caPem: config.caPem } : {}),
      });
      try {
        // The client credentials grant itself: the authority refuses a wrong or expired secret (AADSTS7000215/7000222).
        await graph.checkCredentials();
        return { call: 'Graph client-credentials token request', account: config.tenantId };
      } finally {
        await graph.close();
      }
    }
    case 'drive': {
      const config = configOf(connection, (c) => DriveConfigSchema.safeParse(c));
      const drive = new DriveConnector({
        accessToken: accessTokenOf(secret), rootUrl: config.rootUrl, maxFileBytes: 1, retry: CHECK_DRIVE_RETRY,
        ...(config.adminRootUrl ? { adminRootUrl: config.adminRootUrl } : {}),
      });
      // Admin SDK customers.get (my_customer): authenticated, one small answer, and names the customer.
      return { call: 'Admin SDK customers.get', account: (await drive.customer()).id };
    }
  }
}

/**
 * One authenticated call to the connection's source with `secret`. SOURCE_AUTH_FAILED when the source
 * refuses it; SOURCE_UNAVAILABLE when it does not answer within 15 s. Never stores anything.
 */
export async function checkCredential(connection: Connection, secret: string, timeoutMs = CHECK_TIMEOUT_MS): Promise<CredentialCheck> {
  const timer = new AbortController();
  const timeout = sleep(timeoutMs, undefined, { signal: timer.signal }).then(() => {
    throw new AstryError('SOURCE_UNAVAILABLE', `${connection.source} did not answer the credential check within ${timeoutMs / 1000}s`);
  });
  try {
    return await Promise.race([check(connection, secret), timeout]);
  } catch (err) {
    // An account the credential cannot see (e.g. Drive's 404 for my_customer) is a refusal of the
    // credential, not a missing connection: the edges would otherwise answer 404.
    if (isAstryError(err, 'NOT_FOUND')) throw new AstryError('SOURCE_AUTH_FAILED', `${connection.source} does not show this credential its account: ${err.message}`, { cause: err });
    throw err;
  } finally {
    timer.abort();
    await timeout.catch(() => undefined);
  }
}

/** What `rotateCredential` needs. */
export interface RotateCredentialInput {
  workspaceId: string;
  /** Connection id (digits) or name, of `workspaceId`. */
  connection: string;
  secret: string;
  /** Check the secret against the source first (checkCredential) and refuse what it refuses. */
  verify: boolean;
}

/**
 * Replaces a connection's credential. With `verify`, the source must accept it first, and it must be
 * for the account the connection has synced so far (a token of another Slack workspace or Google
 * customer would make the next sync replace this one's documents with another company's): CONFLICT.
 */
export async function rotateCredential(
  deps: { pool: Queryable; keys: KeyProvider },
  input: RotateCredentialInput,
): Promise<SecretRotation & { verified: CredentialCheck | null }> {
  if (input.secret.trim() === '') throw new AstryError('CONFIG_INVALID', 'the new secret is empty');
  const connection = await getConnection(deps.pool, input.connection, input.workspaceId);
  let verified: CredentialCheck | null = null;
  if (input.verify) {
    verified = await checkCredential(connection, input.secret);
    const synced = await syncedAccount(deps.pool, connection);
    if (synced !== null && synced !== verified.account) {
      throw new AstryError('CONFLICT', `the new credential is for ${connection.source} account ${verified.account}, but connection ${connection.name} syncs ${synced}`);
    }
  }
  const rotation = await rotateConnectionSecret(deps.pool, deps.keys, input.workspaceId, connection.id, input.secret);
  return { ...rotation, verified };
}
