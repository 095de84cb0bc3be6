/**
 * PATCH (RFC 7644 §3.5.2) as Okta and Entra send it, applied with scimmy's PatchOp after a
 * normalization pass that absorbs their documented deviations:
 * - op names in any case ("Replace", "Add", "Remove": Entra without the aadOptscim062020 flag);
 * - attribute names in any case, in paths, value-path filters and the keys of a path-less value;
 * - booleans and integers sent as strings (`"value": "False"`: Entra; `"2"` for a custom integer);
 * - `replace` without a path whose value keys are themselves paths (`"name.givenName"`: Entra);
 * - read-only or server-owned keys inside a path-less value (`id` in Okta's group rename, `meta`, `schemas`);
 * - `remove` of members by a value list (Entra) as well as by a filter path (Okta), `"$ref": null` members.
 * Everything else is scimmy's, so the semantics stay those of the RFC.
 */
import SCIMMY from 'scimmy';
import { z } from 'zod';
import { ScimError } from './errors.ts';
import { formatFilter, parseFilter } from './filter-parse.ts';
import { attributeOf, canonicalPath, extensionsOf, PATCH_SCHEMA, splitUrn, subAttributeOf, type ResourceKind } from './schema.ts';

const OperationSchema = z.object({ op: z.string(), path: z.string().optional(), value: z.unknown().optional() });
type Operation = z.infer<typeof OperationSchema>;

/** Keys a client may put in a path-less value that are ours to set, and are ignored. */
const SERVER_OWNED = new Set(['id', 'meta', 'schemas']);

function invalid(scimType: 'invalidSyntax' | 'invalidPath' | 'invalidValue', message: string): ScimError {
  return new ScimError(400, scimType, message);
}

/** A key of `body` whatever its case (Entra and Okta agree on `Operations`; other clients do not). */
function field(body: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(body).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : body[key];
}

/** Reads a PatchOp message; the shape errors are 400 invalidSyntax. */
export function readPatchOperations(body: unknown): Operation[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('invalidSyntax', 'a PatchOp message must be a JSON object');
  const record = body as Record<string, unknown>;
  const schemas = field(record, 'schemas');
  // Lenient on a missing `schemas` (some clients omit it), strict on a wrong one.
  if (schemas !== undefined && !(Array.isArray(schemas) && schemas.includes(PATCH_SCHEMA))) {
    throw invalid('invalidSyntax', `a PatchOp message must declare ${PATCH_SCHEMA}`);
  }
  const parsed = z.array(z.unknown()).min(1).safeParse(field(record, 'Operations'));
  if (!parsed.success) throw invalid('invalidSyntax', 'a PatchOp message needs a non-empty Operations array');
  return parsed.data.map((raw, i) => {
    const source = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
    const op = OperationSchema.safeParse({ op: field(source, 'op'), path: field(source, 'path') ?? undefined, value: field(source, 'value') });
    if (!op.success) throw invalid('invalidSyntax', `operation ${i + 1} needs a string "op" (and a string "path" if any)`);
    return op.data;
  });
}

/** Canonical spelling of a PATCH path: `attrPath`, `attrPath[filter]` or `attrPath[filter].subAttr`. */
export function canonicalPatchPath(kind: ResourceKind, path: string): string {
  const open = path.indexOf('[');
  if (open < 0) return canonicalPath(kind, path.trim());
  const close = path.lastIndexOf(']');
  if (close < open) throw invalid('invalidPath', `unbalanced brackets in path ${path}`);
  const attribute = canonicalPath(kind, path.slice(0, open).trim());
  const definition = attributeOf(kind, attribute);
  const sub = (name: string) => (definition ? subAttributeOf(definition, name)?.name ?? name : name);
  let filter: string;
  try {
    filter = formatFilter(parseFilter(path.slice(open + 1, close)), (p) => sub(p));
  } catch (err) {
    throw invalid('invalidPath', `invalid filter in path ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const rest = path.slice(close + 1);
  const tail = rest.startsWith('.') ? `.${sub(rest.slice(1))}` : rest;
  return `${attribute}[${filter}]${tail}`;
}

/** Converts string-typed booleans and integers to what the attribute declares; drops null members of objects. */
export function normalizeValue(attribute: SCIMMY.Types.Attribute | undefined, value: unknown): unknown {
  if (attribute === undefined) return value;
  if (Array.isArray(value)) return attribute.config.multiValued === true ? value.map((v) => normalizeScalar(attribute, v)) : value;
  return normalizeScalar(attribute, value);
}

function normalizeScalar(attribute: SCIMMY.Types.Attribute, value: unknown): unknown {
  const type = String(attribute.type);
  if (type === 'boolean' && typeof value === 'string' && /^(true|false)$/i.test(value.trim())) return value.trim().toLowerCase() === 'true';
  if ((type === 'integer' || type === 'decimal') && typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  if (type === 'complex' && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      const sub = subAttributeOf(attribute, key);
      // Entra's {"$ref": null, "value": "…"}; Okta's member "display", which we do not keep.
      if (v === null || sub === undefined) continue;
      out[sub.name] = normalizeValue(sub, v);
    }
    return out;
  }
  return value;
}

/**
 * The value of a whole extension (`"path": "urn:…:enterprise:2.0:User"`): its own attributes by
 * canonical name, typed; `schemas` and nulls dropped. `fold` may post-process each attribute value.
 */
export function normalizeExtension(
  kind: ResourceKind, urn: string, value: unknown, fold: (v: unknown, a: SCIMMY.Types.Attribute) => unknown = (v) => v,
): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const attribute = attributeOf(kind, `${urn}:${key}`);
    if (attribute === undefined || v === null) continue;
    out[attribute.name] = fold(normalizeValue(attribute, v), attribute);
  }
  return out;
}

/** The attribute a canonical PATCH path ends at, ignoring value filters (`emails[…].value` -> emails.value). */
function targetOf(kind: ResourceKind, path: string): SCIMMY.Types.Attribute | undefined {
  return attributeOf(kind, path.replace(/\[[^\]]*\]/g, ''));
}

function normalizeOperation(kind: ResourceKind, operation: Operation, index: number): Operation[] {
  const op = operation.op.toLowerCase();
  if (op !== 'add' && op !== 'remove' && op !== 'replace') throw invalid('invalidSyntax', `operation ${index}: unknown op "${operation.op}"`);
  if (operation.path === undefined || operation.path.trim() === '') {
    if (op === 'remove') throw new ScimError(400, 'noTarget', `operation ${index}: remove needs a path`);
    const value = operation.value;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw invalid('invalidValue', `operation ${index}: ${op} without a path needs an object value`);
    }
    // Each key is a path of its own (Entra: "name.givenName", "emails[type eq \"work\"].value").
    return Object.entries(value).flatMap(([key, v]) => {
      if (SERVER_OWNED.has(key.toLowerCase())) return [];
      return normalizeOperation(kind, { op, path: key, value: v }, index);
    });
  }
  const path = canonicalPatchPath(kind, operation.path);
  const { urn, rest } = splitUrn(kind, path);
  const extension = urn === undefined || rest !== '' ? undefined : extensionsOf(kind).find((e) => e.id === urn);
  if (extension !== undefined && op === 'remove') {
    // A whole extension removed is each of its attributes removed (scimmy 1.3.5 fails on the URN alone).
    return extension.attributes.map((a) => ({ op, path: `${extension.id}:${a.name}` }));
  }
  if (extension !== undefined && operation.value !== undefined && operation.value !== null) {
    return [{ op, path, value: normalizeExtension(kind, extension.id, operation.value) }];
  }
  if (op === 'remove') return [{ op, path, ...(operation.value === undefined ? {} : { value: normalizeValue(targetOf(kind, path), operation.value) }) }];
  // replace with null is a remove (RFC 7644 §3.5.2.3 leaves it open; Entra clears attributes this way).
  if (operation.value === null) return op === 'replace' ? [{ op: 'remove', path }] : [];
  const target = targetOf(kind, path);
  const value = normalizeValue(target, operation.value);
  // Replacing a single complex attribute leaves the sub-attributes not named unchanged (RFC 7644
  // §3.5.2.3): that is scimmy's add (a merge); its replace would drop them.
  const merge = op === 'replace' && !path.includes('[') && target !== undefined && String(target.type) === 'complex' && target.config.multiValued !== true;
  return [{ op: merge ? 'add' : op, path, value }];
}

/** The operations in the RFC's own terms: lowercase ops, canonical paths, typed values, path-less values split per key. */
export function normalizeOperations(kind: ResourceKind, operations: readonly Operation[]): PatchOperation[] {
  return operations.flatMap((o, i) => normalizeOperation(kind, o, i + 1)).map((o) => {
    const op = o.op;
    if (op !== 'add' && op !== 'remove' && op !== 'replace') throw invalid('invalidSyntax', `unknown op "${op}"`);
    return { ...o, op };
  });
}

/** A normalized operation. */
export interface PatchOperation {
  op: 'add' | 'remove' | 'replace';
  path?: string;
  value?: unknown;
}

/**
 * Applies normalized operations to `resource` (a scimmy schema instance of `kind`) and returns the
 * new resource, or undefined when nothing changed. Errors are ScimError or scimmy's SCIMError (400s).
 */
export async function applyPatch<S extends SCIMMY.Types.Schema>(resource: S, normalized: readonly PatchOperation[]): Promise<S | undefined> {
  if (normalized.length === 0) return undefined;
  const message = new SCIMMY.Messages.PatchOp({ schemas: [PATCH_SCHEMA], Operations: [...normalized] });
  try {
    return (await message.apply(resource)) ?? undefined;
  } catch (err) {
    if (err instanceof TypeError) throw invalid('invalidValue', err.message);
    throw err;
  }
}
