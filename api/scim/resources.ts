/** What /Users and /Groups share: query parameters, input normalization, output shaping. */
import type pg from 'pg';
import SCIMMY from 'scimmy';
import { coerced, ScimError } from './errors.ts';
import { normalizeExtension, normalizeValue } from './patch.ts';
import {
  attributeOf, canonicalPath, DEFAULT_PAGE_SIZE, definitionOf, ENDPOINT, extensionsOf, LIST_SCHEMA, MAX_PAGE_SIZE, SCHEMA_CLASS, splitUrn, type ResourceKind,
} from './schema.ts';

/** One authenticated SCIM request: the workspace its token belongs to, and our base URL as the client sees it. */
export interface ScimContext {
  pool: pg.Pool;
  workspaceId: string;
  /** e.g. `https://astry.example.com/scim/v2`: meta.location and $ref are built from it. */
  baseUrl: string;
}

/** Query parameters of GET (RFC 7644 §3.4.2 and §3.9), read case-insensitively. */
export interface ListQuery {
  filter: string | undefined;
  /** 1-based. */
  startIndex: number;
  count: number;
  attributes: string | undefined;
  excludedAttributes: string | undefined;
}

function param(query: unknown, name: string): string | undefined {
  if (typeof query !== 'object' || query === null) return undefined;
  const entry = Object.entries(query).find(([k]) => k.toLowerCase() === name.toLowerCase());
  const value: unknown = Array.isArray(entry?.[1]) ? entry[1][0] : entry?.[1];
  return typeof value === 'string' ? value : undefined;
}

function integer(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^-?\d+$/.test(raw.trim())) throw new ScimError(400, 'invalidValue', `${name} must be an integer`);
  return Number(raw);
}

/** Reads list parameters; startIndex < 1 counts as 1, count is clamped to 0..MAX_PAGE_SIZE (RFC 7644 §3.4.2.4). */
export function readListQuery(query: unknown): ListQuery {
  const filter = param(query, 'filter');
  return {
    filter: filter === undefined || filter.trim() === '' ? undefined : filter,
    startIndex: Math.min(2 ** 31 - 1, Math.max(1, integer(param(query, 'startIndex'), 'startIndex') ?? 1)),
    count: Math.min(MAX_PAGE_SIZE, Math.max(0, integer(param(query, 'count'), 'count') ?? DEFAULT_PAGE_SIZE)),
    attributes: param(query, 'attributes'),
    excludedAttributes: param(query, 'excludedAttributes'),
  };
}

/** Which attributes to return (`attributes` or `excludedAttributes`). */
export interface Projection {
  /** scimmy's attribute filter, for lists naming sub-attributes; undefined: everything, or `keep` decides. */
  filter: SCIMMY.Types.Filter | undefined;
  /** For lists of top-level names only: whether a top-level key is returned (the common, cheap case). */
  keep: ((key: string) => boolean) | undefined;
  /** Whether the named (canonical, top-level) attribute is returned at all: skip loading what is not. */
  returns(attribute: string): boolean;
}

function names(kind: ResourceKind, list: string): string[] {
  return list.split(',').map((a) => a.trim()).filter((a) => a !== '').map((a) => canonicalPath(kind, a));
}

/** `id` and `schemas` are returned whatever is asked (RFC 7643 §3.1, "returned: always"). */
const ALWAYS = new Set(['id', 'schemas']);

export function projection(kind: ResourceKind, query: Pick<ListQuery, 'attributes' | 'excludedAttributes'>): Projection {
  const top = (path: string) => {
    const { urn, rest } = splitUrn(kind, path);
    return urn !== undefined && rest === '' ? urn : (rest.split('.')[0] ?? '');
  };
  const simple = (list: string[]) => list.every((a) => !a.includes('.') || (a.toLowerCase().startsWith('urn:') && splitUrn(kind, a).rest === ''));
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  if (query.attributes !== undefined && query.attributes.trim() !== '') {
    const wanted = names(kind, query.attributes);
    const returns = (attribute: string) => wanted.some((w) => same(top(w), attribute));
    if (simple(wanted)) return { filter: undefined, keep: (key) => ALWAYS.has(key) || returns(key), returns };
    return { filter: coerced(() => new SCIMMY.Types.Filter(wanted.map((a) => `${a} pr`).join(' and '))), keep: undefined, returns };
  }
  if (query.excludedAttributes !== undefined && query.excludedAttributes.trim() !== '') {
    const excluded = names(kind, query.excludedAttributes);
    const returns = (attribute: string) => !excluded.some((e) => same(e, attribute));
    if (simple(excluded)) return { filter: undefined, keep: (key) => ALWAYS.has(key) || returns(key), returns };
    return { filter: coerced(() => new SCIMMY.Types.Filter(excluded.map((a) => `${a} np`).join(' and '))), keep: undefined, returns };
  }
  return { filter: undefined, keep: undefined, returns: () => true };
}

/**
 * Output of one resource. Stored attributes were validated by scimmy when written, so the common
 * case is assembled directly (scimmy's coercion costs ~2.5 ms a resource, 250 ms a page of 100);
 * projections naming sub-attributes go through scimmy. `schemas` and `id` are always returned.
 */
export function render(kind: ResourceKind, resource: Record<string, unknown>, baseUrl: string, view: Projection): Record<string, unknown> {
  const location = `${baseUrl}${ENDPOINT[kind]}/${String(resource.id)}`;
  if (view.filter !== undefined) {
    const out = coerced(() => new SCHEMA_CLASS[kind](resource, 'out', `${baseUrl}${ENDPOINT[kind]}`, view.filter));
    const plain = JSON.parse(JSON.stringify(out)) as Record<string, unknown>;
    return { schemas: plain.schemas ?? [definitionOf(kind).id], id: resource.id, ...plain };
  }
  const { id, meta, ...attributes } = resource;
  const extensions = extensionsOf(kind).map((e) => e.id).filter((urn) => urn in attributes);
  const created = typeof meta === 'object' && meta !== null ? Reflect.get(meta, 'created') : undefined;
  const lastModified = typeof meta === 'object' && meta !== null ? Reflect.get(meta, 'lastModified') : undefined;
  const full: Record<string, unknown> = {
    schemas: [definitionOf(kind).id, ...extensions],
    id,
    ...attributes,
    meta: { resourceType: kind, created: iso(created), lastModified: iso(lastModified), location },
  };
  if (view.keep === undefined) return full;
  return Object.fromEntries(Object.entries(full).filter(([key]) => view.keep?.(key) ?? true));
}

function iso(value: unknown): string | undefined {
  return value instanceof Date ? value.toISOString() : typeof value === 'string' ? value : undefined;
}

export function listResponse(resources: Record<string, unknown>[], total: number, startIndex: number): Record<string, unknown> {
  return { schemas: [LIST_SCHEMA], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources };
}

/** Keys of a body that the server owns or never keeps: ignored on input. */
const IGNORED = new Set(['id', 'meta', 'schemas', 'password', 'groups']);

/**
 * A POST or PUT body validated as a `kind` resource (scimmy, direction 'in') after the same
 * leniencies as PATCH: case-insensitive names, string booleans/integers, unknown extension URNs
 * dropped, canonical values (emails.type "Work") folded to their canonical spelling.
 */
export function readResource(kind: ResourceKind, body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ScimError(400, 'invalidSyntax', 'the request body must be a JSON object');
  const known = new Set([definitionOf(kind).id, ...extensionsOf(kind).map((e) => e.id)].map((id) => id.toLowerCase()));
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (IGNORED.has(key.toLowerCase()) || value === null) continue;
    if (key.toLowerCase().startsWith('urn:')) {
      const { urn, rest } = splitUrn(kind, key);
      if (urn === undefined || !known.has(urn.toLowerCase())) continue;
      if (rest === '') input[urn] = normalizeExtension(kind, urn, value, canonicalValues);
      else input[canonicalPath(kind, key)] = canonicalValues(normalizeValue(attributeOf(kind, key), value), attributeOf(kind, key));
      continue;
    }
    const attribute = attributeOf(kind, key);
    if (attribute === undefined) continue;
    input[attribute.name] = canonicalValues(normalizeValue(attribute, value), attribute);
  }
  input.schemas = [definitionOf(kind).id];
  const resource = coerced(() => new SCHEMA_CLASS[kind](input, 'in'));
  return JSON.parse(JSON.stringify(resource)) as Record<string, unknown>;
}

/** Folds sub-attribute values onto their declared canonical spelling (`"Work"` -> `"work"`). */
function canonicalValues(value: unknown, attribute: SCIMMY.Types.Attribute | undefined): unknown {
  if (attribute === undefined) return value;
  if (Array.isArray(value)) return value.map((v) => canonicalValues(v, attribute));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      const sub = attribute.subAttributes?.find((s) => s.name === key);
      out[key] = sub === undefined ? v : canonicalValues(v, sub);
    }
    return out;
  }
  const canon = attribute.config.canonicalValues;
  if (typeof value === 'string' && Array.isArray(canon)) return canon.find((c) => c.toLowerCase() === value.toLowerCase()) ?? value;
  return value;
}
