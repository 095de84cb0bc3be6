/**
 * SCIM filters evaluated inside Postgres, so a list or "does this user exist" query reads only the
 * matching rows and pages are cut by the database. The SQL refers to `r` (scim_resources) and `p`
 * (principals), the aliases of db/scim.ts listResources; attribute names are case-insensitive and
 * string comparisons follow each attribute's `caseExact` (userName and emails are not).
 *
 * Hot filters hit indexed columns: userName/displayName (lower(name)), externalId, id.
 */
import type SCIMMY from 'scimmy';
import { ScimError } from './errors.ts';
import { parseFilter, type CompareOp, type FilterNode, type Scalar } from './filter-parse.ts';
import { attributeOf, definitionOf, splitUrn, subAttributeOf, type ResourceKind } from './schema.ts';

/** A value to compare, and how: columns are typed; JSON attributes are read by their schema type. */
interface Operand {
  sql: string;
  type: 'text' | 'bool' | 'number' | 'time';
  caseExact: boolean;
  /** SQL true when the attribute has a value (RFC 7644 `pr`). */
  present: string;
}

/** The elements of a multi-valued attribute: a FROM clause and an operand for each sub-attribute. */
interface Collection {
  from(alias: string): string;
  element(alias: string, sub: string | undefined): Operand;
}

/** Where paths resolve: the resource itself, or one element of a collection (inside `[...]`). */
type Scope = { kind: 'resource' } | { kind: 'element'; collection: Collection; alias: string };

function invalid(message: string): ScimError {
  return new ScimError(400, 'invalidFilter', message);
}

function column(sql: string, type: Operand['type'], caseExact: boolean, nullable = false): Operand {
  const present = type === 'text' ? `coalesce(${sql} <> '', false)` : nullable ? `${sql} IS NOT NULL` : 'true';
  return { sql, type, caseExact, present };
}

/** A JSON value typed by the schema attribute describing it. */
function json(sql: string, attribute: SCIMMY.Types.Attribute): Operand {
  const present = `coalesce(${sql} NOT IN ('null'::jsonb, '""'::jsonb, '[]'::jsonb, '{}'::jsonb), false)`;
  const caseExact = attribute.config.caseExact === true;
  switch (String(attribute.type)) {
    case 'boolean':
      return { sql: `(CASE WHEN jsonb_typeof(${sql}) = 'boolean' THEN (${sql} #>> '{}')::boolean END)`, type: 'bool', caseExact, present };
    case 'integer':
    case 'decimal':
      return { sql: `(CASE WHEN jsonb_typeof(${sql}) = 'number' THEN (${sql} #>> '{}')::numeric END)`, type: 'number', caseExact, present };
    case 'complex':
      throw invalid(`${attribute.name} is complex: compare one of its sub-attributes`);
    default:
      // string, reference, binary and dateTime are JSON strings (dateTime as ISO 8601, compared as text).
      return { sql: `(CASE WHEN jsonb_typeof(${sql}) = 'string' THEN ${sql} #>> '{}' END)`, type: 'text', caseExact, present };
  }
}

function jsonArray(array: string, attribute: SCIMMY.Types.Attribute): Collection {
  return {
    from: (alias) => `jsonb_array_elements(CASE WHEN jsonb_typeof(${array}) = 'array' THEN ${array} ELSE '[]'::jsonb END) AS ${alias}(v)`,
    element(alias, sub) {
      if (String(attribute.type) !== 'complex') {
        if (sub !== undefined) throw invalid(`${attribute.name} has no sub-attribute ${sub}`);
        return json(`${alias}.v`, attribute);
      }
      // A complex collection compared without a sub-attribute compares its `value`.
      const target = subAttributeOf(attribute, sub ?? 'value');
      if (target === undefined) throw invalid(`${attribute.name} has no sub-attribute ${sub ?? 'value'}`);
      return json(`(${alias}.v -> '${target.name}')`, target);
    },
  };
}

/** Group members, or a user's groups: memberships owned by the directory (connection_id NULL). */
function related(direction: 'members' | 'groups', attribute: SCIMMY.Types.Attribute): Collection {
  const [self, other] = direction === 'members' ? ['group_id', 'member_id'] : ['member_id', 'group_id'];
  return {
    from: (alias) =>
      `memberships ${alias}_m JOIN scim_resources ${alias} ON ${alias}.principal_id = ${alias}_m.${other}
       WHERE ${alias}_m.${self} = r.principal_id AND ${alias}_m.connection_id IS NULL`,
    element(alias, sub) {
      const name = (sub ?? 'value').toLowerCase();
      if (name === 'value') return column(`${alias}.id::text`, 'text', true);
      if (name === 'display') return column(`${alias}.name`, 'text', false);
      if (name === 'type') return column(direction === 'members' ? `${alias}.resource_type` : `'direct'`, 'text', false);
      throw invalid(`${attribute.name}.${sub ?? ''} cannot be filtered on`);
    },
  };
}

type Target = { kind: 'operand'; operand: Operand } | { kind: 'collection'; collection: Collection; sub: string | undefined };

/** Resolves an attribute path of a resource to a column, a JSON value, or a collection. */
function resolveResource(kind: ResourceKind, rawPath: string, params: unknown[]): Target {
  const { urn, rest } = splitUrn(kind, rawPath);
  const core = urn === undefined || urn === definitionOf(kind).id;
  const path = core ? rest : rawPath;
  const [first = '', second] = (core ? path : rest).split('.');
  if (core) {
    const name = first.toLowerCase();
    if (name === 'id') return { kind: 'operand', operand: column('r.id::text', 'text', true) };
    if (name === 'externalid') return { kind: 'operand', operand: column('r.external_id', 'text', true, true) };
    if (name === (kind === 'User' ? 'username' : 'displayname')) return { kind: 'operand', operand: column('r.name', 'text', false) };
    if (kind === 'User' && name === 'active') return { kind: 'operand', operand: column('p.active', 'bool', true) };
    if (name === 'meta') {
      const sub = second?.toLowerCase();
      if (sub === 'created') return { kind: 'operand', operand: column('r.created_at', 'time', true) };
      if (sub === 'lastmodified') return { kind: 'operand', operand: column('r.updated_at', 'time', true) };
      if (sub === 'resourcetype') return { kind: 'operand', operand: column('r.resource_type', 'text', true) };
      throw invalid(`meta.${second ?? ''} cannot be filtered on`);
    }
  }
  const attribute = attributeOf(kind, core ? first : `${urn}:${first}`);
  if (attribute === undefined) throw invalid(`unknown attribute ${rawPath}`);
  if (core && kind === 'Group' && attribute.name === 'members') return { kind: 'collection', collection: related('members', attribute), sub: second };
  if (core && kind === 'User' && attribute.name === 'groups') return { kind: 'collection', collection: related('groups', attribute), sub: second };
  const keys = core ? [attribute.name] : [urn ?? '', attribute.name];
  const value = `(r.attributes #> $${params.push(keys)}::text[])`;
  if (attribute.config.multiValued === true) return { kind: 'collection', collection: jsonArray(value, attribute), sub: second };
  if (second === undefined) return { kind: 'operand', operand: json(value, attribute) };
  const sub = subAttributeOf(attribute, second);
  if (sub === undefined) throw invalid(`unknown attribute ${rawPath}`);
  return { kind: 'operand', operand: json(`(${value} -> '${sub.name}')`, sub) };
}

/** Normalizes a comparison value to the operand's type, refusing what cannot compare. */
function operandValue(operand: Operand, op: CompareOp, value: Exclude<Scalar, null>): string | number | boolean {
  switch (operand.type) {
    case 'text':
      return String(value);
    case 'bool': {
      if (op !== 'eq' && op !== 'ne') throw invalid(`${op} does not apply to a boolean`);
      if (typeof value === 'boolean') return value;
      if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
      throw invalid(`expected true or false, found ${JSON.stringify(value)}`);
    }
    case 'number': {
      if (op === 'co' || op === 'sw' || op === 'ew') throw invalid(`${op} does not apply to a number`);
      const n = typeof value === 'number' ? value : Number(value);
      if (typeof value === 'boolean' || !Number.isFinite(n)) throw invalid(`expected a number, found ${JSON.stringify(value)}`);
      return n;
    }
    case 'time': {
      if (op === 'co' || op === 'sw' || op === 'ew') throw invalid(`${op} does not apply to a dateTime`);
      const t = typeof value === 'string' ? Date.parse(value) : Number.NaN;
      if (Number.isNaN(t)) throw invalid(`expected a dateTime, found ${JSON.stringify(value)}`);
      return new Date(t).toISOString();
    }
  }
}

const CAST: Readonly<Record<Operand['type'], string>> = { text: 'text', bool: 'boolean', number: 'numeric', time: 'timestamptz' };
const ORDER: Partial<Record<CompareOp, string>> = { gt: '>', ge: '>=', lt: '<', le: '<=' };

function comparison(operand: Operand, op: CompareOp, raw: Scalar, params: unknown[]): string {
  if (raw === null) {
    // `eq null` asks for absence (RFC 7644 §3.4.2.2 treats null as unassigned).
    if (op === 'eq') return `NOT ${operand.present}`;
    if (op === 'ne') return operand.present;
    throw invalid(`${op} does not compare with null`);
  }
  const value = operandValue(operand, op, raw);
  const param = `$${params.push(value)}::${CAST[operand.type]}`;
  const fold = (sql: string) => (operand.type === 'text' && !operand.caseExact ? `lower(${sql})` : sql);
  const x = fold(operand.sql);
  const v = fold(param);
  switch (op) {
    case 'eq':
      return `${x} = ${v}`;
    case 'ne':
      return `(${operand.sql} IS NULL OR ${x} <> ${v})`;
    case 'co':
      return `strpos(${x}, ${v}) > 0`;
    case 'sw':
      return `starts_with(${x}, ${v})`;
    case 'ew':
      return `right(${x}, char_length(${param})) = ${v}`;
    default:
      return operand.type === 'text' ? `${x} COLLATE "C" ${ORDER[op]} ${v} COLLATE "C"` : `${x} ${ORDER[op]} ${v}`;
  }
}

class Translator {
  readonly #kind: ResourceKind;
  readonly #params: unknown[];
  #aliases = 0;

  constructor(kind: ResourceKind, params: unknown[]) {
    this.#kind = kind;
    this.#params = params;
  }

  node(node: FilterNode, scope: Scope): string {
    switch (node.kind) {
      case 'and':
      case 'or':
        return `(${this.node(node.left, scope)} ${node.kind.toUpperCase()} ${this.node(node.right, scope)})`;
      case 'not':
        // Comparisons with an absent attribute are NULL in SQL and false in SCIM: NOT must see false.
        return `(NOT coalesce(${this.node(node.filter, scope)}, false))`;
      case 'present':
      case 'compare':
        return this.#leaf(node, scope);
      case 'valuePath': {
        if (scope.kind === 'element') throw invalid('a value path cannot be nested in another');
        const target = resolveResource(this.#kind, node.path, this.#params);
        if (target.kind !== 'collection' || target.sub !== undefined) throw invalid(`${node.path} is not multi-valued`);
        return this.#exists(target.collection, (alias) => this.node(node.filter, { kind: 'element', collection: target.collection, alias }));
      }
    }
  }

  #leaf(node: Extract<FilterNode, { kind: 'present' | 'compare' }>, scope: Scope): string {
    const test = (operand: Operand) => (node.kind === 'present' ? operand.present : comparison(operand, node.op, node.value, this.#params));
    if (scope.kind === 'element') return test(scope.collection.element(scope.alias, node.path));
    const target = resolveResource(this.#kind, node.path, this.#params);
    if (target.kind === 'operand') return test(target.operand);
    // emails.value eq "x" or emails pr: some element.
    return this.#exists(target.collection, (alias) => test(target.collection.element(alias, target.sub)));
  }

  #exists(collection: Collection, where: (alias: string) => string): string {
    const alias = `e${++this.#aliases}`;
    const from = collection.from(alias);
    const joiner = /\bWHERE\b/.test(from) ? 'AND' : 'WHERE';
    return `EXISTS (SELECT 1 FROM ${from} ${joiner} ${where(alias)})`;
  }
}

/**
 * The SQL condition for a SCIM filter over `kind` resources; values are appended to `params` (which
 * already holds the caller's own parameters) and referenced as `$n`. Bad filters: 400 invalidFilter.
 */
export function filterToSql(kind: ResourceKind, filter: string, params: unknown[]): string {
  return new Translator(kind, params).node(parseFilter(filter), { kind: 'resource' });
}
