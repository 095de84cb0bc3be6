/**
 * Zod schemas of the Microsoft Graph and SharePoint REST responses the connector reads; types come
 * from z.infer. Unknown fields pass through untouched; missing optional facets are undefined.
 * https://learn.microsoft.com/en-us/graph/api/resources/driveitem
 */
import { z } from 'zod';

/** Token endpoint answer (client credentials). https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow */
export const TokenSchema = z.object({ access_token: z.string().min(1), expires_in: z.coerce.number().positive() });

/** Any paged Graph collection. */
export const pageOf = <T extends z.ZodType>(row: T) =>
  z.object({ value: z.array(row), '@odata.nextLink': z.string().optional(), '@odata.deltaLink': z.string().optional() });

export const UserSchema = z.object({
  id: z.string(),
  displayName: z.string().nullish(),
  mail: z.string().nullish(),
  userPrincipalName: z.string(),
  accountEnabled: z.boolean().nullish(),
  userType: z.string().nullish(),
});
export type GraphUser = z.infer<typeof UserSchema>;

export const GroupSchema = z.object({ id: z.string(), displayName: z.string().nullish(), groupTypes: z.array(z.string()).default([]) });
export type GraphGroup = z.infer<typeof GroupSchema>;

/** A directoryObject in transitiveMembers/owners: users carry their fields, other types only their id. */
export const MemberSchema = z.object({ '@odata.type': z.string(), id: z.string() }).loose();

export const SiteSchema = z.object({ id: z.string(), name: z.string().nullish(), displayName: z.string().nullish(), webUrl: z.string() });
export type GraphSite = z.infer<typeof SiteSchema>;

export const DriveSchema = z.object({ id: z.string(), name: z.string().nullish(), webUrl: z.string().nullish() });

const IdentitySchema = z.object({ id: z.string().nullish(), displayName: z.string().nullish(), email: z.string().nullish() }).loose();

/** grantedToV2 / an entry of grantedToIdentitiesV2. https://learn.microsoft.com/en-us/graph/api/resources/sharepointidentityset */
export const IdentitySetSchema = z.object({
  user: IdentitySchema.nullish(),
  group: IdentitySchema.nullish(),
  siteUser: IdentitySchema.extend({ loginName: z.string().nullish() }).nullish(),
  siteGroup: IdentitySchema.extend({ loginName: z.string().nullish() }).nullish(),
});
export type IdentitySet = z.infer<typeof IdentitySetSchema>;

/** https://learn.microsoft.com/en-us/graph/api/resources/permission */
export const PermissionSchema = z.object({
  id: z.string(),
  roles: z.array(z.string()).default([]),
  grantedToV2: IdentitySetSchema.nullish(),
  grantedToIdentitiesV2: z.array(IdentitySetSchema).nullish(),
  link: z.object({ scope: z.string().nullish(), type: z.string().nullish() }).loose().nullish(),
  expirationDateTime: z.string().nullish(),
  inheritedFrom: z.object({ id: z.string().nullish() }).loose().nullish(),
});
export type GraphPermission = z.infer<typeof PermissionSchema>;
export const PermissionsSchema = z.object({ value: z.array(PermissionSchema) });

/** A driveItem as delta reports it (no parentReference.path in delta). */
export const DriveItemSchema = z.object({
  id: z.string(),
  name: z.string().nullish(),
  eTag: z.string().nullish(),
  cTag: z.string().nullish(),
  webUrl: z.string().nullish(),
  size: z.number().nullish(),
  lastModifiedDateTime: z.string().nullish(),
  parentReference: z.object({ id: z.string().nullish(), driveId: z.string().nullish() }).loose().nullish(),
  file: z.object({ mimeType: z.string().nullish() }).loose().nullish(),
  folder: z.object({}).loose().nullish(),
  root: z.object({}).loose().nullish(),
  deleted: z.object({ state: z.string().nullish() }).loose().nullish(),
  '@microsoft.graph.sharedChanged': z.string().nullish(),
  /** Who created / last modified the item (identitySet: user, application, device); delta returns both. */
  createdBy: IdentitySetSchema.nullish(),
  lastModifiedBy: IdentitySetSchema.nullish(),
});
export type DriveItem = z.infer<typeof DriveItemSchema>;
export const DeltaPageSchema = pageOf(DriveItemSchema);

/** SharePoint REST, odata=nometadata: a site group's users. https://learn.microsoft.com/en-us/sharepoint/dev/sp-add-ins/working-with-users-and-groups-in-sharepoint */
export const SpUserSchema = z.object({
  Id: z.number(),
  Title: z.string().nullish(),
  LoginName: z.string(),
  Email: z.string().nullish(),
  PrincipalType: z.number(),
  UserPrincipalName: z.string().nullish(),
});
export type SpUser = z.infer<typeof SpUserSchema>;
export const SpUsersSchema = z.object({ value: z.array(SpUserSchema) });
export const SpGroupsSchema = z.object({ value: z.array(z.object({ Id: z.number(), Title: z.string().nullish() })) });

/** A change notification POSTed to our webhook. https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks */
export const NotificationsSchema = z.object({
  value: z.array(z.object({ subscriptionId: z.string(), clientState: z.string().nullish(), resource: z.string().nullish(), changeType: z.string().nullish() })),
});

export const SubscriptionSchema = z.object({ id: z.string(), expirationDateTime: z.string().nullish() });
