/**
 * What our SCIM service provider serves, described with scimmy's schema definitions: core User
 * (RFC 7643 §4.1) with the enterprise extension (§4.3) and Astry's own extension (clearance), and
 * core Group (§4.2). The same definitions validate input, shape output and describe /Schemas.
 */
import SCIMMY from 'scimmy';
import { MAX_CLEARANCE } from '../../identity/users.ts';

/** The resource types we serve. */
export type ResourceKind = 'User' | 'Group';

export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const ENTERPRISE_USER_SCHEMA = SCIMMY.Schemas.EnterpriseUser.id;
/** Astry's user extension: `clearance`, the level an IdP attribute maps to (Okta/Entra custom attribute). */
export const ASTRY_USER_SCHEMA = 'urn:ietf:params:scim:schemas:extension:astry:2.0:User';
/** Largest page a list answers (ServiceProviderConfig filter.maxResults), and the default page. */
export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;

const astryUser = new SCIMMY.Types.SchemaDefinition('AstryUser', ASTRY_USER_SCHEMA, 'Astry user attributes', [
  new SCIMMY.Types.Attribute('integer', 'clearance', {
    description: `Clearance level (0..${MAX_CLEARANCE}) of the user, from an IdP attribute. Effective clearance is the highest of this and the user's groups'.`,
  }),
]);

// scimmy keeps schema definitions process-wide: extend the core User once per process.
const userDefinition = SCIMMY.Schemas.User.definition;
for (const extension of [SCIMMY.Schemas.EnterpriseUser.definition, astryUser]) {
  const members: unknown[] = userDefinition.attributes;
  if (!members.some((a) => a instanceof SCIMMY.Types.SchemaDefinition && a.id === extension.id)) userDefinition.extend(extension, false);
}

// RFC 7643 §4.1.2 defines no canonical types for roles, entitlements and x509Certificates (scimmy
// 1.3.5 enforces some): any label is accepted there.
for (const name of ['roles', 'entitlements', 'x509Certificates']) {
  const type = userDefinition.attribute(`${name}.type`);
  type.config.canonicalValues = false;
}
// Members are {value, $ref, type}: a display name per member is neither kept nor returned (Okta
// and Entra do not read it back, and a 10,000-member group would carry 10,000 names).
const groupMembers = SCIMMY.Schemas.Group.definition.attribute('members');
if (groupMembers.subAttributes?.some((a) => a.name === 'display')) groupMembers.truncate('display');

/** The scimmy schema class of a resource type (validation with direction 'in', output with 'out'). */
export const SCHEMA_CLASS = { User: SCIMMY.Schemas.User, Group: SCIMMY.Schemas.Group } as const;

export function definitionOf(kind: ResourceKind): SCIMMY.Types.SchemaDefinition {
  return SCHEMA_CLASS[kind].definition;
}

/** Endpoint of a resource type under the base URL. */
export const ENDPOINT: Readonly<Record<ResourceKind, string>> = { User: '/Users', Group: '/Groups' };

/** A named attribute's definition, or undefined if the schema (or its extensions) has none; names are case-insensitive. */
export function attributeOf(kind: ResourceKind, path: string): SCIMMY.Types.Attribute | undefined {
  try {
    const found = definitionOf(kind).attribute<SCIMMY.Types.Attribute | SCIMMY.Types.SchemaDefinition>(path);
    return found instanceof SCIMMY.Types.Attribute ? found : undefined;
  } catch {
    return undefined;
  }
}

/** A sub-attribute of a complex attribute, case-insensitively. */
export function subAttributeOf(attribute: SCIMMY.Types.Attribute, name: string): SCIMMY.Types.Attribute | undefined {
  return attribute.subAttributes?.find((a) => a.name.toLowerCase() === name.toLowerCase());
}

/** The extension URN a path is qualified with (case-insensitively), and the rest of the path. */
export function splitUrn(kind: ResourceKind, path: string): { urn: string | undefined; rest: string } {
  if (!path.toLowerCase().startsWith('urn:')) return { urn: undefined, rest: path };
  const ids = [definitionOf(kind).id, ...extensionsOf(kind).map((e) => e.id)];
  const urn = ids.find((id) => path.toLowerCase() === id.toLowerCase() || path.toLowerCase().startsWith(`${id.toLowerCase()}:`));
  return urn === undefined ? { urn: undefined, rest: path } : { urn, rest: path.slice(urn.length + 1) };
}

/** Schema extensions of a resource type (scimmy keeps them among the attributes; its typings do not say so). */
export function extensionsOf(kind: ResourceKind): SCIMMY.Types.SchemaDefinition[] {
  const members: unknown[] = definitionOf(kind).attributes;
  return members.filter((a): a is SCIMMY.Types.SchemaDefinition => a instanceof SCIMMY.Types.SchemaDefinition);
}

/**
 * A dotted attribute path with every name in the schema's own spelling (SCIM names are
 * case-insensitive: RFC 7643 §2.1), e.g. `NAME.GIVENNAME` -> `name.givenName`; URN prefixes too.
 * Names the schema does not know are returned as given.
 */
export function canonicalPath(kind: ResourceKind, path: string): string {
  const { urn, rest } = splitUrn(kind, path);
  const extension = urn === undefined ? undefined : [definitionOf(kind), ...extensionsOf(kind)].find((d) => d.id === urn);
  const attributes = extension?.attributes ?? definitionOf(kind).attributes;
  const parts = rest.split('.');
  const out: string[] = [];
  let scope: SCIMMY.Types.Attribute[] | undefined = attributes.filter((a): a is SCIMMY.Types.Attribute => a instanceof SCIMMY.Types.Attribute);
  for (const part of parts) {
    const found: SCIMMY.Types.Attribute | undefined = scope?.find((a) => a.name.toLowerCase() === part.toLowerCase());
    out.push(found?.name ?? part);
    scope = found?.subAttributes;
  }
  const joined = out.join('.');
  if (urn === undefined) return joined;
  return rest === '' ? urn : `${urn}:${joined}`;
}

/** RFC 7643 §5: what this service provider supports. */
export function serviceProviderConfig(baseUrl: string): Record<string, unknown> {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
    documentationUri: 'https://github.com/astry/astry/blob/main/docs/identity.md',
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: MAX_PAGE_SIZE },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'Bearer token',
        description: 'A workspace provisioning token from `astry scim token create`, sent as `Authorization: Bearer <token>`.',
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${baseUrl}/ServiceProviderConfig` },
  };
}

/** RFC 7643 §6: the User and Group resource types. */
export function resourceTypes(baseUrl: string): Record<string, unknown>[] {
  const describe = (kind: ResourceKind, description: string) => ({
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
    id: kind,
    name: kind,
    endpoint: ENDPOINT[kind],
    description,
    schema: definitionOf(kind).id,
    schemaExtensions: extensionsOf(kind).map((e) => ({ schema: e.id, required: false })),
    meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/${kind}` },
  });
  return [describe('User', 'A person: a canonical Astry user'), describe('Group', 'A directory group: part of its members\' principal sets')];
}

/** RFC 7643 §7: every schema we serve (core User and Group, the enterprise and Astry user extensions). */
export function schemaDocuments(baseUrl: string): SCIMMY.Types.SchemaDefinition.SchemaDescription[] {
  const definitions = [definitionOf('User'), ...extensionsOf('User'), definitionOf('Group')];
  return definitions.map((d) => d.describe(`${baseUrl}/Schemas`));
}
