import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { checkCredential } from '../connectors/credentials.ts';
import { isAstryError, type AstryErrorCode } from '../core/errors.ts';
import type { Connection, SourceKind } from '../db/connections.ts';
import { generateDriveCompany } from '../fixtures/drive/company.ts';
import { DriveEmulator } from '../fixtures/drive/emulator.ts';
import { CUSTOMER_ID } from '../fixtures/drive/ids.ts';
import { GraphEmulator } from '../fixtures/graph/emulator.ts';
import { TENANT_ID } from '../fixtures/graph/ids.ts';
import { generateTenant } from '../fixtures/graph/tenant.ts';
import { generateCompany } from '../fixtures/slack/company.ts';
import { SlackEmulator } from '../fixtures/slack/emulator.ts';
import { TEAM_ID } from '../fixtures/slack/ids.ts';

const connection = (source: SourceKind, config: Record<string, unknown>): Connection => ({ id: '1', workspaceId: '1', source, name: source, config, status: 'active' });
const failsWith = (code: AstryErrorCode, message?: RegExp) => (err: unknown) =>
  isAstryError(err, code) && (message === undefined || message.test(err.message));

describe('checking a credential against its source before it is stored', () => {
  let slack: SlackEmulator;
  let graph: GraphEmulator;
  let drive: DriveEmulator;
  let silent: Server;
  let silentUrl: string;
  const held: Socket[] = [];

  before(async () => {
    [slack, graph, drive] = await Promise.all([
      SlackEmulator.start(generateCompany()), GraphEmulator.start(generateTenant()), DriveEmulator.start(generateDriveCompany()),
    ]);
    // Accepts connections and never answers: a source that hangs.
    silent = createServer((socket) => void held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    assert.ok(address && typeof address === 'object');
    silentUrl = `http://127.0.0.1:${address.port}/api/`;
  });

  after(async () => {
    await Promise.all([slack?.close(), graph?.close(), drive?.close()]);
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => silent?.close(resolve));
  });

  test('Slack: auth.test names the team of a good token; a wrong or revoked one is SOURCE_AUTH_FAILED', async () => {
    const c = connection('slack', { apiUrl: slack.url });
    const old = slack.token;
    assert.deepEqual(await checkCredential(c, old), { call: 'Slack auth.test', account: TEAM_ID });
    await assert.rejects(checkCredential(c, 'xoxb-wrong'), failsWith('SOURCE_AUTH_FAILED', /invalid_auth/));
    const next = slack.rotateToken();
    await assert.rejects(checkCredential(c, old), failsWith('SOURCE_AUTH_FAILED', /token_revoked/));
    assert.equal((await checkCredential(c, next)).account, TEAM_ID);
  });

  test('Graph: the client-credentials token request accepts the app\'s secret and refuses another', async () => {
    const { tenantId, clientId, clientSecret } = graph.state.tenant;
    const c = connection('graph', { graphUrl: graph.graphUrl, authorityUrl: graph.authorityUrl, tenantId, clientId, caPem: graph.caPem });
    assert.deepEqual(await checkCredential(c, clientSecret), { call: 'Graph client-credentials token request', account: TENANT_ID });
    await assert.rejects(checkCredential(c, `${clientSecret}x`), failsWith('SOURCE_AUTH_FAILED', /refused the client credentials/));
  });

  test('Drive: customers.get names the customer of a good token (bare or as JSON); a wrong one is SOURCE_AUTH_FAILED', async () => {
    const c = connection('drive', { rootUrl: drive.rootUrl });
    assert.deepEqual(await checkCredential(c, drive.token), { call: 'Admin SDK customers.get', account: CUSTOMER_ID });
    assert.equal((await checkCredential(c, JSON.stringify({ access_token: drive.token }))).account, CUSTOMER_ID);
    await assert.rejects(checkCredential(c, 'ya29.wrong'), failsWith('SOURCE_AUTH_FAILED'));
  });

  test('a source that does not answer is SOURCE_UNAVAILABLE after the timeout, not a hang', async () => {
    const started = Date.now();
    await assert.rejects(checkCredential(connection('slack', { apiUrl: silentUrl }), 'xoxb-any', 300), failsWith('SOURCE_UNAVAILABLE', /did not answer/));
    assert.ok(Date.now() - started < 5000);
  });

  test('a connection whose config does not parse is CONFIG_INVALID before any call', async () => {
    await assert.rejects(checkCredential(connection('slack', { apiUrl: 'not a url' }), 'xoxb-any'), failsWith('CONFIG_INVALID'));
    await assert.rejects(checkCredential(connection('graph', { tenantId: TENANT_ID }), 'secret'), failsWith('CONFIG_INVALID'));
  });
});
