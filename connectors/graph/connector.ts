/**
 * The Microsoft 365 connector: Entra users and groups, SharePoint sites, their site groups and
 * document libraries, drive deltas, permissions and file content, read with the real
 * @microsoft/microsoft-graph-client (app-only) and SharePoint REST. Stateless apart from its
 * clients; the sync decides what to fetch when.
 *
 * Application permissions required: Sites.Read.All (or Sites.Selected), Files.Read.All,
 * User.Read.All, GroupMember.Read.All; SharePoint REST needs a SharePoint app-only token
 * (certificate credential in a real tenant, see docs/graph.md).
 */
import { AstryError, isAstryError } from '../../core/errors.ts';
import { TokenProvider } from './auth.ts';
import { DEFAULT_GRAPH_RETRY, GRAPH_SCOPE, GraphApi, type GraphRetry } from './client.ts';
import { boundFetch } from './http.ts';
import { IdentityIndex } from './identities.ts';
import {
  DeltaPageSchema, DriveSchema, GroupSchema, MemberSchema, PermissionsSchema, SiteSchema, SpGroupsSchema, SpUsersSchema,
  SubscriptionSchema, UserSchema, pageOf, type DriveItem, type GraphGroup, type GraphPermission, type GraphSite, type GraphUser, type SpUser,
} from './schemas.ts';

/** Options of GraphConnector; validated by the constructor (CONFIG_INVALID). */
export interface GraphConnectorOptions {
  /** Graph base URL, e.g. `https://graph.microsoft.com/` (the emulator's in tests). */
  graphUrl: string;
  /** Token authority, e.g. `https://login.microsoftonline.com`. */
  authorityUrl: string;
  /** Entra tenant id (GUID). */
  tenantId: string;
  /** Application (client) id of the app registration. */
  clientId: string;
  clientSecret: string;
  /** PEM of a private CA to trust instead of the system roots (tests: the emulator's). */
  caPem?: string;
  /** Largest file downloaded, in bytes; a bigger body aborts with TOO_LARGE while streaming. */
  maxFileBytes: number;
  /** Throttling retry policy (default DEFAULT_GRAPH_RETRY). */
  retry?: GraphRetry;
}

/** The Prefer header that makes delta report sharing changes, deletions and items behind permission gaps. https://learn.microsoft.com/en-us/graph/api/driveitem-delta#request-headers */
export const DELTA_PREFER = 'deltashowremovedasdeleted, deltatraversepermissiongaps, deltashowsharingchanges, hierarchicalsharing';

/** One delta page, or `resync` when Graph answered 410 Gone (the token is no longer valid). */
export type DeltaResult = { items: DriveItem[]; nextLink?: string; deltaLink?: string } | 'resync';

function validate(options: GraphConnectorOptions): void {
  for (const key of ['graphUrl', 'authorityUrl'] as const) {
    let url: URL;
    try {
      url = new URL(options[key]);
    } catch (cause) {
      throw new AstryError('CONFIG_INVALID', `Graph ${key} is not a URL: ${options[key]}`, { cause });
    }
    // The SDK only sends the token and follows nextLink/deltaLink over https.
    if (url.protocol !== 'https:') throw new AstryError('CONFIG_INVALID', `Graph ${key} must be https: ${options[key]}`);
  }
  if (options.tenantId.trim() === '' || options.clientId.trim() === '' || options.clientSecret === '') {
    throw new AstryError('CONFIG_INVALID', 'Graph tenantId, clientId and clientSecret are required');
  }
  if (!Number.isSafeInteger(options.maxFileBytes) || options.maxFileBytes < 1) throw new AstryError('CONFIG_INVALID', 'Graph maxFileBytes must be a positive integer');
}

/** Reads one Microsoft 365 tenant with app-only credentials. */
export class GraphConnector {
  readonly tenantId: string;
  readonly #api: GraphApi;
  readonly #close: () => Promise<void>;
  readonly #maxFileBytes: number;
  readonly #retry: GraphRetry;
  readonly #tokens: TokenProvider;

  constructor(options: GraphConnectorOptions) {
    validate(options);
    this.tenantId = options.tenantId;
    this.#maxFileBytes = options.maxFileBytes;
    this.#retry = options.retry ?? DEFAULT_GRAPH_RETRY;
    const http = boundFetch(options.caPem);
    this.#close = http.close;
    const tokens = new TokenProvider(options, http.fetch);
    this.#tokens = tokens;
    this.#api = new GraphApi({ graphUrl: options.graphUrl, tokens, fetch: http.fetch, retry: this.#retry });
  }

  /** Asks the authority for a Graph token with the client credentials: SOURCE_AUTH_FAILED when it refuses them. */
  async checkCredentials(): Promise<void> {
    await this.#tokens.token(GRAPH_SCOPE);
  }

  close(): Promise<void> {
    return this.#close();
  }

  /** Every user of the directory, disabled ones and guests included. */
  async users(): Promise<GraphUser[]> {
    const users: GraphUser[] = [];
    // https://learn.microsoft.com/en-us/graph/api/user-list
    const path = '/users?$select=id,displayName,mail,userPrincipalName,accountEnabled,userType&$top=999';
    for await (const page of this.#api.pages(path, pageOf(UserSchema))) users.push(...page.value);
    return users;
  }

  async identities(): Promise<IdentityIndex> {
    return new IdentityIndex(await this.users(), this.tenantId);
  }

  /** Every live group (Microsoft 365 and security). */
  async groups(): Promise<GraphGroup[]> {
    const groups: GraphGroup[] = [];
    // https://learn.microsoft.com/en-us/graph/api/group-list
    for await (const page of this.#api.pages('/groups?$select=id,displayName,groupTypes&$top=999', pageOf(GroupSchema))) groups.push(...page.value);
    return groups;
  }

  /**
   * User ids of a group, nested groups expanded by Graph (transitive), or of its owners; null when
   * the group is gone (404): a deleted group grants nothing.
   */
  async groupUserIds(groupId: string, relation: 'transitiveMembers' | 'owners'): Promise<string[] | null> {
    const ids: string[] = [];
    try {
      // https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers, .../group-list-owners
      for await (const page of this.#api.pages(`/groups/${encodeURIComponent(groupId)}/${relation}?$select=id&$top=999`, pageOf(MemberSchema))) {
        for (const member of page.value) if (member['@odata.type'] === '#microsoft.graph.user') ids.push(member.id);
      }
    } catch (err) {
      if (isAstryError(err, 'NOT_FOUND')) return null;
      throw err;
    }
    return ids;
  }

  /** Every SharePoint site the app can read. https://learn.microsoft.com/en-us/graph/api/site-getallsites */
  async sites(): Promise<GraphSite[]> {
    const sites: GraphSite[] = [];
    for await (const page of this.#api.pages('/sites/getAllSites?$select=id,name,displayName,webUrl&$top=999', pageOf(SiteSchema))) sites.push(...page.value);
    return sites;
  }

  /** The document libraries of a site. https://learn.microsoft.com/en-us/graph/api/drive-list */
  async drives(siteId: string): Promise<{ id: string; name: string }[]> {
    const page = await this.#api.get(`/sites/${encodeURIComponent(siteId)}/drives?$select=id,name,webUrl`, pageOf(DriveSchema));
    return page.value.map((d) => ({ id: d.id, name: d.name ?? d.id }));
  }

  /** The site's SharePoint groups, each with its users (user logins and group/special claims). */
  async siteGroups(site: GraphSite): Promise<{ id: number; title: string; users: SpUser[] }[]> {
    const web = `${site.webUrl.replace(/\/$/, '')}/_api/web`;
    const groups = await this.#api.sharepoint(`${web}/sitegroups`, SpGroupsSchema);
    const result: { id: number; title: string; users: SpUser[] }[] = [];
    for (const group of groups.value) {
      try {
        const users = await this.#api.sharepoint(`${web}/sitegroups/getById(${group.Id})/users`, SpUsersSchema);
        result.push({ id: group.Id, title: group.Title ?? String(group.Id), users: users.value });
      } catch (err) {
        // A group deleted between the two calls is simply empty now.
        if (!isAstryError(err, 'NOT_FOUND')) throw err;
        result.push({ id: group.Id, title: group.Title ?? String(group.Id), users: [] });
      }
    }
    return result;
  }

  /** The first delta request of a drive (a full enumeration ending with a deltaLink). */
  initialDelta(driveId: string): string {
    return `/drives/${encodeURIComponent(driveId)}/root/delta`;
  }

  /**
   * One delta page from a delta URL (initialDelta, a nextLink or a deltaLink), with sharing changes
   * reported (items carry `@microsoft.graph.sharedChanged`). 410 Gone -> `resync`.
   * https://learn.microsoft.com/en-us/graph/api/driveitem-delta
   */
  async delta(url: string): Promise<DeltaResult> {
    const page = await this.#api.getOrGone(url, DeltaPageSchema, { Prefer: DELTA_PREFER });
    if (page === 'gone') return 'resync';
    return {
      items: page.value,
      ...(page['@odata.nextLink'] ? { nextLink: page['@odata.nextLink'] } : {}),
      ...(page['@odata.deltaLink'] ? { deltaLink: page['@odata.deltaLink'] } : {}),
    };
  }

  /** Every permission Graph lists for an item, inherited ones included; null when the item is gone. https://learn.microsoft.com/en-us/graph/api/driveitem-list-permissions */
  async permissions(driveId: string, itemId: string): Promise<GraphPermission[] | null> {
    try {
      const page = await this.#api.get(`/drives/${encodeURIComponent(driveId)}/items/${encodeURIComponent(itemId)}/permissions`, PermissionsSchema);
      return page.value;
    } catch (err) {
      if (isAstryError(err, 'NOT_FOUND')) return null;
      throw err;
    }
  }

  /**
   * A file's bytes, at most maxFileBytes (TOO_LARGE beyond, without reading the rest). `/content`
   * answers 302 to a pre-authenticated URL, fetched without our token.
   * https://learn.microsoft.com/en-us/graph/api/driveitem-get-content
   */
  async download(driveId: string, itemId: string): Promise<Buffer> {
    for (let attempt = 0; ; attempt++) {
      const abort = new AbortController();
      let response = await this.#api.raw(`/drives/${encodeURIComponent(driveId)}/items/${encodeURIComponent(itemId)}/content`);
      if (response.status === 302 || response.status === 301) {
        const location = response.headers.get('location');
        await response.body?.cancel();
        if (!location || !location.startsWith('https://')) throw new AstryError('SOURCE_BAD_DATA', `Graph content of ${itemId} redirected to a non-https URL`);
        response = await this.#api.anonymous(location, abort.signal).catch((cause: unknown) => {
          throw new AstryError('SOURCE_UNAVAILABLE', `download of ${itemId} failed`, { cause });
        });
      }
      if (response.ok) return readBounded(response, this.#maxFileBytes, abort);
      await response.body?.cancel();
      const status = response.status;
      // The download host throttles like Graph does (429/503 with Retry-After); the SDK only retried the /content call.
      if ((status === 429 || status === 503) && attempt < this.#retry.maxRetries) {
        const after = Number(response.headers.get('retry-after'));
        await new Promise((resolve) => setTimeout(resolve, 1000 * (Number.isFinite(after) && after >= 0 ? Math.min(after, 180) : this.#retry.delaySeconds * 2 ** attempt)));
        continue;
      }
      const code = status === 404 ? 'NOT_FOUND' : status === 401 || status === 403 ? 'SOURCE_AUTH_FAILED' : status === 429 ? 'SOURCE_RATE_LIMITED' : 'SOURCE_UNAVAILABLE';
      throw new AstryError(code, `download of ${itemId} answered HTTP ${status}`);
    }
  }

  /** Subscribes to change notifications of a drive (the webhook validates the handshake). https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions */
  async subscribe(driveId: string, notificationUrl: string, clientState: string, expiresAt: Date): Promise<{ id: string; expiresAt: string }> {
    const sub = await this.#api.post('/subscriptions', {
      changeType: 'updated', notificationUrl, resource: `drives/${driveId}/root`, clientState, expirationDateTime: expiresAt.toISOString(),
    }, SubscriptionSchema);
    return { id: sub.id, expiresAt: sub.expirationDateTime ?? expiresAt.toISOString() };
  }
}

async function readBounded(response: Response, maxBytes: number, abort: AbortController): Promise<Buffer> {
  const tooLarge = () => new AstryError('TOO_LARGE', `file is larger than ${maxBytes} bytes`);
  try {
    if (Number(response.headers.get('content-length') ?? 0) > maxBytes) throw tooLarge();
    if (response.body === null) return Buffer.alloc(0);
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of response.body) {
      total += chunk.byteLength;
      if (total > maxBytes) throw tooLarge();
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, total);
  } catch (err) {
    abort.abort();
    if (err instanceof AstryError) throw err;
    throw new AstryError('SOURCE_UNAVAILABLE', 'download failed while reading', { cause: err });
  }
}
