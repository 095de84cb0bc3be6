/**
 * zod schemas of every Drive v3 and Admin SDK Directory v1 response the connector reads. Types come
 * from z.infer; unknown fields are stripped; flags Google omits when false default to false.
 * Drive: https://developers.google.com/workspace/drive/api/reference/rest/v3
 * Directory: https://developers.google.com/workspace/admin/directory/reference/rest/v1
 */
import { z } from 'zod';

/**
 * Fields requested for files (changes.list, files.list, files.get): what documents, ACLs and provenance
 * (owners, last modifier) need.
 */
export const FILE_FIELDS =
  'id,name,mimeType,parents,driveId,owners(emailAddress),lastModifyingUser(emailAddress),modifiedTime,trashed,size,md5Checksum,webViewLink,inheritedPermissionsDisabled';

/** A Drive `User`: no directory id, only an address (absent when the user hides it). https://developers.google.com/workspace/drive/api/reference/rest/v3/User */
const DriveUserSchema = z.object({ emailAddress: z.string().optional() });

/** https://developers.google.com/workspace/drive/api/reference/rest/v3/files */
export const FileSchema = z.object({
  id: z.string().min(1),
  name: z.string().default(''),
  mimeType: z.string().min(1),
  parents: z.array(z.string()).default([]),
  driveId: z.string().optional(),
  /** My Drive files: their owner; shared drive files have none. */
  owners: z.array(DriveUserSchema).default([]),
  lastModifyingUser: DriveUserSchema.optional(),
  modifiedTime: z.string().min(1),
  trashed: z.boolean().default(false),
  /** int64 as a string; only binary files have one. */
  size: z.string().regex(/^\d+$/).optional(),
  md5Checksum: z.string().optional(),
  webViewLink: z.string().optional(),
  inheritedPermissionsDisabled: z.boolean().default(false),
});
export type DriveFile = z.infer<typeof FileSchema>;

/** https://developers.google.com/workspace/drive/api/reference/rest/v3/changes */
export const ChangeSchema = z.object({
  changeType: z.string().default('file'),
  removed: z.boolean().default(false),
  fileId: z.string().optional(),
  driveId: z.string().optional(),
  time: z.string().optional(),
  file: FileSchema.optional(),
});
export type DriveChange = z.infer<typeof ChangeSchema>;

/** https://developers.google.com/workspace/drive/api/reference/rest/v3/changes/list */
export const ChangeListSchema = z.object({
  changes: z.array(ChangeSchema).default([]),
  nextPageToken: z.string().optional(),
  newStartPageToken: z.string().optional(),
});

/** https://developers.google.com/workspace/drive/api/reference/rest/v3/changes/getStartPageToken */
export const StartPageTokenSchema = z.object({ startPageToken: z.string().min(1) });

/** https://developers.google.com/workspace/drive/api/reference/rest/v3/files/list */
export const FileListSchema = z.object({ files: z.array(FileSchema).default([]), nextPageToken: z.string().optional() });

const RoleSchema = z.enum(['owner', 'organizer', 'fileOrganizer', 'writer', 'commenter', 'reader']);

/** https://developers.google.com/workspace/drive/api/reference/rest/v3/permissions */
export const PermissionSchema = z.object({
  id: z.string().optional(),
  type: z.enum(['user', 'group', 'domain', 'anyone']),
  role: RoleSchema,
  emailAddress: z.string().optional(),
  domain: z.string().optional(),
  allowFileDiscovery: z.boolean().default(false),
  expirationTime: z.string().optional(),
  deleted: z.boolean().default(false),
  /** Present for shared drive items only: where each part of this permission comes from. */
  permissionDetails: z
    .array(
      z.object({
        permissionType: z.enum(['file', 'member']),
        role: RoleSchema,
        inherited: z.boolean().default(false),
        inheritedFrom: z.string().optional(),
      }),
    )
    .optional(),
});
export type DrivePermission = z.infer<typeof PermissionSchema>;

export const PERMISSION_FIELDS = 'nextPageToken,permissions(id,type,role,emailAddress,domain,allowFileDiscovery,expirationTime,deleted,permissionDetails)';

/** https://developers.google.com/workspace/drive/api/reference/rest/v3/permissions/list */
export const PermissionListSchema = z.object({ permissions: z.array(PermissionSchema).default([]), nextPageToken: z.string().optional() });

/** https://developers.google.com/workspace/drive/api/reference/rest/v3/drives/list */
export const DriveListSchema = z.object({
  drives: z.array(z.object({ id: z.string().min(1), name: z.string().default('') })).default([]),
  nextPageToken: z.string().optional(),
});
export type SharedDriveInfo = z.infer<typeof DriveListSchema>['drives'][number];

/** https://developers.google.com/workspace/drive/api/reference/rest/v3/changes/watch */
export const ChannelSchema = z.object({ id: z.string(), resourceId: z.string(), expiration: z.string().optional() });

/** https://developers.google.com/workspace/admin/directory/reference/rest/v1/customers */
export const CustomerSchema = z.object({ id: z.string().min(1), customerDomain: z.string().min(1) });

/** https://developers.google.com/workspace/admin/directory/reference/rest/v1/users */
export const DirectoryUserSchema = z.object({
  id: z.string().min(1),
  primaryEmail: z.string().min(3),
  name: z.object({ fullName: z.string().optional() }).default({}),
  suspended: z.boolean().default(false),
  archived: z.boolean().default(false),
});
export type GoogleUser = z.infer<typeof DirectoryUserSchema>;

export const UsersListSchema = z.object({ users: z.array(DirectoryUserSchema).default([]), nextPageToken: z.string().optional() });

/** https://developers.google.com/workspace/admin/directory/reference/rest/v1/groups */
export const GroupsListSchema = z.object({
  groups: z.array(z.object({ id: z.string().min(1), email: z.string().min(3), name: z.string().default('') })).default([]),
  nextPageToken: z.string().optional(),
});
export type GoogleGroup = z.infer<typeof GroupsListSchema>['groups'][number];

/** https://developers.google.com/workspace/admin/directory/reference/rest/v1/members */
export const MembersListSchema = z.object({
  members: z
    .array(
      z.object({
        id: z.string().optional(),
        email: z.string().optional(),
        type: z.enum(['USER', 'GROUP', 'CUSTOMER']),
        status: z.string().default('ACTIVE'),
      }),
    )
    .default([]),
  nextPageToken: z.string().optional(),
});
export type GroupMemberEntry = z.infer<typeof MembersListSchema>['members'][number];

/** Google's JSON error envelope: https://cloud.google.com/apis/design/errors */
export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.number().optional(),
    message: z.string().default(''),
    errors: z.array(z.object({ reason: z.string().optional(), domain: z.string().optional() })).default([]),
  }),
});
