/**
 * The Google Drive connector: reads the directory (users, groups, derived memberships), shared
 * drives and their members, change logs, files, permissions and content through the real googleapis
 * clients. Stateless apart from small caches; the sync decides what to fetch when.
 *
 * Scope: the crawl account's view (domain-wide admin access to shared drives, My Drive items in
 * its `changes.list` without driveId). A change log per shared drive (driveId), one for My Drive.
 */
import { AstryError, isAstryError } from '../../core/errors.ts';
import type { SourceIdentity } from '../types.ts';
import type { AclContext } from './acl.ts';
import { DriveApi, type DriveApiOptions } from './client.ts';
import { EXPORT_AS, readMode } from './documents.ts';
import { toIdentity } from './identities.ts';
import {
  ChangeListSchema, ChannelSchema, CustomerSchema, DriveListSchema, FILE_FIELDS, FileListSchema, FileSchema, GroupsListSchema,
  MembersListSchema, PERMISSION_FIELDS, PermissionListSchema, StartPageTokenSchema, UsersListSchema,
  type DriveChange, type DriveFile, type DrivePermission, type GoogleGroup, type GroupMemberEntry, type SharedDriveInfo,
} from './schemas.ts';

/** Options of DriveConnector; validated by the constructor (CONFIG_INVALID). */
export interface DriveConnectorOptions extends DriveApiOptions {
  /** Largest file downloaded, in bytes: a larger declared size is TOO_LARGE without downloading. */
  maxFileBytes: number;
}

/** A page of one change log. */
export interface ChangePage {
  changes: DriveChange[];
  /** Token of the next page, absent on the last page. */
  nextPageToken?: string;
  /** On the last page: where the next run starts. */
  newStartPageToken?: string;
}

/** Drive ids of change logs: a shared drive id, or null for My Drive. */
export type LogId = string | null;

const CHANGE_FIELDS = `nextPageToken,newStartPageToken,changes(changeType,removed,fileId,driveId,time,file(${FILE_FIELDS}))`;
const LIST_FIELDS = `nextPageToken,files(${FILE_FIELDS})`;

function validate(options: DriveConnectorOptions): void {
  if (options.accessToken.trim() === '') throw new AstryError('CONFIG_INVALID', 'Drive access token is empty');
  if (!Number.isSafeInteger(options.maxFileBytes) || options.maxFileBytes < 1) throw new AstryError('CONFIG_INVALID', 'Drive maxFileBytes must be a positive integer');
  for (const url of [options.rootUrl, options.adminRootUrl ?? options.rootUrl]) {
    if (!URL.canParse(url)) throw new AstryError('CONFIG_INVALID', `Drive root URL is not a URL: ${url}`);
  }
}

const allDrives = (driveId: LogId) => (driveId === null ? {} : { driveId, supportsAllDrives: true, includeItemsFromAllDrives: true });

/** Reads one Google Workspace customer with a crawl account's token. */
export class DriveConnector {
  readonly api: DriveApi;
  readonly #maxFileBytes: number;

  constructor(options: DriveConnectorOptions) {
    validate(options);
    this.api = new DriveApi(options);
    this.#maxFileBytes = options.maxFileBytes;
  }

  /** The customer id and primary domain. */
  async customer(): Promise<{ id: string; domain: string }> {
    // https://developers.google.com/workspace/admin/directory/reference/rest/v1/customers/get
    const c = await this.api.call('customers.get', () => this.api.admin.customers.get({ customerKey: 'my_customer' }), CustomerSchema);
    return { id: c.id, domain: c.customerDomain.toLowerCase() };
  }

  /** Every user of the customer, suspended and archived ones included (inactive). */
  async identities(): Promise<SourceIdentity[]> {
    const out: SourceIdentity[] = [];
    let pageToken: string | undefined;
    do {
      // https://developers.google.com/workspace/admin/directory/reference/rest/v1/users/list
      const page = await this.api.call('users.list', () => this.api.admin.users.list({ customer: 'my_customer', maxResults: 500, pageToken }), UsersListSchema);
      for (const u of page.users) out.push(toIdentity(u));
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  /** The ACL context: the customer, its domains (primary + those of its users) and inactive users. */
  async aclContext(identities: readonly SourceIdentity[]): Promise<AclContext> {
    const customer = await this.customer();
    const domains = new Set([customer.domain]);
    for (const i of identities) if (i.email) domains.add(i.email.slice(i.email.lastIndexOf('@') + 1).toLowerCase());
    const inactive = new Set(identities.filter((i) => !i.active && i.email).map((i) => (i.email ?? '').toLowerCase()));
    return { customerId: customer.id, domains, inactive };
  }

  async groups(): Promise<GoogleGroup[]> {
    const out: GoogleGroup[] = [];
    let pageToken: string | undefined;
    do {
      // https://developers.google.com/workspace/admin/directory/reference/rest/v1/groups/list
      const page = await this.api.call('groups.list', () => this.api.admin.groups.list({ customer: 'my_customer', maxResults: 200, pageToken }), GroupsListSchema);
      out.push(...page.groups);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  /** Direct and indirect members of a group; a group deleted meanwhile (404) has none. */
  async groupMembers(groupKey: string): Promise<GroupMemberEntry[]> {
    const out: GroupMemberEntry[] = [];
    let pageToken: string | undefined;
    try {
      do {
        // https://developers.google.com/workspace/admin/directory/reference/rest/v1/members/list
        // Why derived: nested groups are expanded by Google, cycles included.
        const page = await this.api.call('members.list', () => this.api.admin.members.list({ groupKey, includeDerivedMembership: true, maxResults: 200, pageToken }), MembersListSchema);
        out.push(...page.members);
        pageToken = page.nextPageToken;
      } while (pageToken);
    } catch (err) {
      if (isAstryError(err, 'NOT_FOUND')) return [];
      throw err;
    }
    return out;
  }

  /** Every shared drive of the domain (admin access: drives the crawl account is not a member of too). */
  async sharedDrives(): Promise<SharedDriveInfo[]> {
    const out: SharedDriveInfo[] = [];
    let pageToken: string | undefined;
    do {
      // https://developers.google.com/workspace/drive/api/reference/rest/v3/drives/list
      const page = await this.api.call('drives.list', () => this.api.drive.drives.list({ pageSize: 100, pageToken, useDomainAdminAccess: true }), DriveListSchema);
      out.push(...page.drives);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  /** A shared drive's members: permissions.list on the drive id. */
  async driveMembers(driveId: string): Promise<DrivePermission[]> {
    return this.#permissions(driveId, true);
  }

  /** The permissions in force on a file, inherited ones included. */
  async permissions(file: Pick<DriveFile, 'id'>): Promise<DrivePermission[]> {
    return this.#permissions(file.id, false);
  }

  async #permissions(fileId: string, admin: boolean): Promise<DrivePermission[]> {
    const out: DrivePermission[] = [];
    let pageToken: string | undefined;
    do {
      // https://developers.google.com/workspace/drive/api/reference/rest/v3/permissions/list
      const page = await this.api.call('permissions.list', () =>
        this.api.drive.permissions.list({ fileId, supportsAllDrives: true, pageSize: 100, pageToken, fields: PERMISSION_FIELDS, ...(admin ? { useDomainAdminAccess: true } : {}) }), PermissionListSchema);
      out.push(...page.permissions);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  /** Where a change log stands now: changes after this token are new. */
  async startPageToken(driveId: LogId): Promise<string> {
    // https://developers.google.com/workspace/drive/api/reference/rest/v3/changes/getStartPageToken
    const params = driveId === null ? {} : { driveId, supportsAllDrives: true };
    return (await this.api.call('changes.getStartPageToken', () => this.api.drive.changes.getStartPageToken(params), StartPageTokenSchema)).startPageToken;
  }

  /** One page of a change log from `pageToken`, removals included (each entry is the file's current state). */
  async changes(driveId: LogId, pageToken: string, pageSize = 500): Promise<ChangePage> {
    // https://developers.google.com/workspace/drive/api/reference/rest/v3/changes/list
    const page = await this.api.call('changes.list', () =>
      this.api.drive.changes.list({ pageToken, pageSize, includeRemoved: true, fields: CHANGE_FIELDS, ...allDrives(driveId) }), ChangeListSchema);
    if (!page.nextPageToken && !page.newStartPageToken) throw new AstryError('SOURCE_BAD_DATA', 'Drive changes.list page has neither nextPageToken nor newStartPageToken');
    return page;
  }

  /** One page of every non-trashed item of a scope (the initial listing). */
  async listFiles(driveId: LogId, pageToken: string | undefined, pageSize = 1000): Promise<{ files: DriveFile[]; nextPageToken?: string }> {
    // https://developers.google.com/workspace/drive/api/reference/rest/v3/files/list
    const corpora = driveId === null ? { corpora: 'user' } : { corpora: 'drive', ...allDrives(driveId) };
    return this.api.call('files.list', () => this.api.drive.files.list({ ...corpora, q: 'trashed = false', pageSize, pageToken, fields: LIST_FIELDS }), FileListSchema);
  }

  /** The non-trashed children of a folder (all pages). */
  async children(folderId: string, driveId: LogId): Promise<DriveFile[]> {
    const out: DriveFile[] = [];
    let pageToken: string | undefined;
    const corpora = driveId === null ? { corpora: 'user' } : { corpora: 'drive', ...allDrives(driveId) };
    do {
      const q = `'${folderId.replace(/['\\]/g, '\\$&')}' in parents and trashed = false`;
      const page = await this.api.call('files.list', () => this.api.drive.files.list({ ...corpora, q, pageSize: 1000, pageToken, fields: LIST_FIELDS }), FileListSchema);
      out.push(...page.files);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  /** A file's metadata, or null when it is gone. */
  async file(fileId: string): Promise<DriveFile | null> {
    try {
      // https://developers.google.com/workspace/drive/api/reference/rest/v3/files/get
      return await this.api.call('files.get', () => this.api.drive.files.get({ fileId, supportsAllDrives: true, fields: FILE_FIELDS }), FileSchema);
    } catch (err) {
      if (isAstryError(err, 'NOT_FOUND')) return null;
      throw err;
    }
  }

  /** A file's bytes: the text export of a Google-native file, or the download of a binary one. */
  async content(file: DriveFile): Promise<Buffer> {
    const mode = readMode(file);
    const exportAs = EXPORT_AS.get(file.mimeType);
    if (mode === 'export' && exportAs) {
      // https://developers.google.com/workspace/drive/api/reference/rest/v3/files/export (10 MB cap: TOO_LARGE)
      return this.api.bytes('files.export', () => this.api.drive.files.export({ fileId: file.id, mimeType: exportAs }, { responseType: 'arraybuffer' }));
    }
    if (mode !== 'download') throw new AstryError('UNSUPPORTED_TYPE', `Drive file ${file.id} (${file.mimeType}) is not indexed`);
    if (Number(file.size ?? 0) > this.#maxFileBytes) throw new AstryError('TOO_LARGE', `Drive file ${file.id} is ${file.size} bytes; the limit is ${this.#maxFileBytes}`);
    // https://developers.google.com/workspace/drive/api/guides/manage-downloads
    const bytes = await this.api.bytes('files.get.media', () =>
      this.api.drive.files.get({ fileId: file.id, alt: 'media', supportsAllDrives: true }, { responseType: 'arraybuffer' }));
    if (bytes.length > this.#maxFileBytes) throw new AstryError('TOO_LARGE', `Drive file ${file.id} is larger than ${this.#maxFileBytes} bytes`);
    return bytes;
  }

  /** Registers a push channel on a change log. https://developers.google.com/workspace/drive/api/guides/push */
  async watch(driveId: LogId, pageToken: string, channel: { id: string; address: string; token: string; expirationMs: number }): Promise<{ resourceId: string; expirationMs: number }> {
    const requestBody = { id: channel.id, type: 'web_hook', address: channel.address, token: channel.token, expiration: String(channel.expirationMs) };
    const answer = await this.api.call('changes.watch', () => this.api.drive.changes.watch({ pageToken, requestBody, ...allDrives(driveId) }), ChannelSchema);
    return { resourceId: answer.resourceId, expirationMs: Number(answer.expiration ?? channel.expirationMs) };
  }
}
