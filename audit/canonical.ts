/**
 * Canonical JSON in the manner of RFC 8785 (JCS): object keys sorted by UTF-16 code units, no
 * whitespace, numbers and strings serialized as ECMAScript's JSON.stringify does. Only plain JSON
 * values are accepted; anything else throws a TypeError instead of being silently dropped or coerced.
 * Strings must also survive a Postgres jsonb round trip, so U+0000 and lone surrogates are refused.
 */
export function canonicalJson(value: unknown): string {
  return serialize(value, '$', 0);
}

const MAX_DEPTH = 64;

function serialize(value: unknown, path: string, depth: number): string {
  if (depth > MAX_DEPTH) throw new TypeError(`canonical JSON: nesting deeper than ${MAX_DEPTH} at ${path}`);
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: non-finite number at ${path}`);
      return JSON.stringify(value); // -0 becomes 0, as in RFC 8785
    case 'string':
      return serializeString(value, path);
    case 'object':
      return Array.isArray(value) ? serializeArray(value, path, depth) : serializeObject(value, path, depth);
    default:
      throw new TypeError(`canonical JSON: ${typeof value} is not a JSON value at ${path}`);
  }
}

function serializeString(value: string, path: string): string {
  if (!value.isWellFormed()) throw new TypeError(`canonical JSON: lone surrogate in string at ${path}`);
  if (value.includes('\u0000')) throw new TypeError(`canonical JSON: U+0000 in string at ${path}`);
  return JSON.stringify(value);
}

function serializeArray(value: readonly unknown[], path: string, depth: number): string {
  const parts: string[] = [];
  // An index loop (not map) so that holes are seen, as undefined, and refused.
  for (let i = 0; i < value.length; i += 1) parts.push(serialize(value[i], `${path}[${i}]`, depth + 1));
  return `[${parts.join(',')}]`;
}

function serializeObject(value: object, path: string, depth: number): string {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`canonical JSON: ${Object.prototype.toString.call(value)} is not a plain object at ${path}`);
  }
  if (Object.getOwnPropertySymbols(value).length > 0) throw new TypeError(`canonical JSON: symbol key at ${path}`);
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  const parts = keys.map((key) => `${serializeString(key, path)}:${serialize(record[key], `${path}.${key}`, depth + 1)}`);
  return `{${parts.join(',')}}`;
}
