/**
 * The SCIM filter language (RFC 7644 §3.4.2.2) parsed into a tree. Our own parser rather than
 * scimmy's: scimmy flattens filters into an OR of ANDs and, in 1.3.5, drops `not` around a value
 * path and turns `not (a and b)` into `not a and not b` — wrong answers to a provisioning client
 * that decides from them whether a person exists.
 *
 * Also accepted, because Entra sends it: a value path followed by a sub-attribute and a comparison,
 * `emails[type eq "work"].value eq "x"` (the PATCH path form of §3.5.2), meaning one element
 * satisfies both. Operators and attribute names are case-insensitive.
 */
import { ScimError } from './errors.ts';

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
export type Scalar = string | number | boolean | null;

export type FilterNode =
  | { kind: 'and' | 'or'; left: FilterNode; right: FilterNode }
  | { kind: 'not'; filter: FilterNode }
  | { kind: 'compare'; path: string; op: CompareOp; value: Scalar }
  | { kind: 'present'; path: string }
  /** Some element of the multi-valued `path` satisfies `filter` (whose paths name sub-attributes). */
  | { kind: 'valuePath'; path: string; filter: FilterNode };

const COMPARE_OPS: readonly string[] = ['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le'];
/** Longest filter we parse, and deepest nesting: bounds work on hostile input. */
const MAX_FILTER_LENGTH = 4096;
const MAX_DEPTH = 32;

type Token = { type: 'word'; text: string } | { type: 'string'; text: string } | { type: '(' | ')' | '[' | ']' };

const TOKEN = /\s*(?:("(?:[^"\\]|\\.)*")|([()[\]])|([^\s()[\]"]+))/y;

function invalid(message: string): ScimError {
  return new ScimError(400, 'invalidFilter', message);
}

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < source.length) {
    const start = TOKEN.lastIndex;
    const m = TOKEN.exec(source);
    if (m === null) {
      if (source.slice(start).trim() === '') break;
      throw invalid(`unexpected character at ${start}: ${source.slice(start, start + 10)}`);
    }
    const [, quoted, bracket, word] = m;
    if (quoted !== undefined) {
      let text: unknown;
      try {
        text = JSON.parse(quoted);
      } catch {
        throw invalid(`malformed string literal ${quoted.slice(0, 40)}`);
      }
      tokens.push({ type: 'string', text: String(text) });
    } else if (bracket === '(' || bracket === ')' || bracket === '[' || bracket === ']') {
      tokens.push({ type: bracket });
    } else if (word !== undefined) {
      tokens.push({ type: 'word', text: word });
    }
  }
  return tokens;
}

const ATTR_PATH = /^[A-Za-z0-9$:._-]+$/;
const NUMBER = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

class Parser {
  readonly #tokens: Token[];
  #at = 0;
  #depth = 0;

  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }

  parse(): FilterNode {
    const node = this.#or();
    if (this.#at < this.#tokens.length) throw invalid(`unexpected ${describe(this.#tokens[this.#at])}`);
    return node;
  }

  #peekWord(...words: string[]): boolean {
    const t = this.#tokens[this.#at];
    return t?.type === 'word' && words.includes(t.text.toLowerCase());
  }

  #expect(type: '(' | ')' | '[' | ']'): void {
    const t = this.#tokens[this.#at];
    if (t?.type !== type) throw invalid(`expected "${type}" but found ${describe(t)}`);
    this.#at++;
  }

  #or(): FilterNode {
    if (++this.#depth > MAX_DEPTH) throw invalid('filter nested too deeply');
    let left = this.#and();
    while (this.#peekWord('or')) {
      this.#at++;
      left = { kind: 'or', left, right: this.#and() };
    }
    this.#depth--;
    return left;
  }

  #and(): FilterNode {
    let left = this.#unary();
    while (this.#peekWord('and')) {
      this.#at++;
      left = { kind: 'and', left, right: this.#unary() };
    }
    return left;
  }

  #unary(): FilterNode {
    const t = this.#tokens[this.#at];
    if (this.#peekWord('not') && this.#tokens[this.#at + 1]?.type === '(') {
      this.#at++;
      return { kind: 'not', filter: this.#group() };
    }
    if (t?.type === '(') return this.#group();
    return this.#attributeExpression();
  }

  #group(): FilterNode {
    this.#expect('(');
    const inner = this.#or();
    this.#expect(')');
    return inner;
  }

  #attributeExpression(): FilterNode {
    const t = this.#tokens[this.#at++];
    if (t?.type !== 'word' || !ATTR_PATH.test(t.text)) throw invalid(`expected an attribute path but found ${describe(t)}`);
    const path = t.text;
    if (this.#tokens[this.#at]?.type === '[') {
      this.#at++;
      const filter = this.#or();
      this.#expect(']');
      const next = this.#tokens[this.#at];
      if (next?.type === 'word' && next.text.startsWith('.')) {
        // emails[type eq "work"].value eq "x": the same element has both.
        this.#at++;
        const sub = this.#test(next.text.slice(1));
        return { kind: 'valuePath', path, filter: { kind: 'and', left: filter, right: sub } };
      }
      return { kind: 'valuePath', path, filter };
    }
    return this.#test(path);
  }

  #test(path: string): FilterNode {
    if (!ATTR_PATH.test(path)) throw invalid(`malformed attribute path ${path}`);
    const op = this.#tokens[this.#at++];
    if (op?.type !== 'word') throw invalid(`expected an operator after ${path} but found ${describe(op)}`);
    const name = op.text.toLowerCase();
    if (name === 'pr') return { kind: 'present', path };
    if (!COMPARE_OPS.includes(name)) throw invalid(`unknown operator ${op.text}`);
    return { kind: 'compare', path, op: name as CompareOp, value: this.#value() };
  }

  #value(): Scalar {
    const t = this.#tokens[this.#at++];
    if (t?.type === 'string') return t.text;
    if (t?.type === 'word') {
      const lower = t.text.toLowerCase();
      if (lower === 'true') return true;
      if (lower === 'false') return false;
      if (lower === 'null') return null;
      if (NUMBER.test(t.text)) return Number(t.text);
    }
    throw invalid(`expected a value but found ${describe(t)}`);
  }
}

function describe(t: Token | undefined): string {
  if (t === undefined) return 'the end of the filter';
  return t.type === 'word' || t.type === 'string' ? `"${t.text.slice(0, 40)}"` : `"${t.type}"`;
}

/** Parses a SCIM filter; malformed input is ScimError 400 invalidFilter. */
export function parseFilter(source: string): FilterNode {
  if (source.length > MAX_FILTER_LENGTH) throw invalid(`filter longer than ${MAX_FILTER_LENGTH} characters`);
  const tokens = tokenize(source);
  if (tokens.length === 0) throw invalid('empty filter');
  return new Parser(tokens).parse();
}

/**
 * Writes a filter back as text, renaming every attribute path with `rename` (e.g. to canonical
 * names); inside a value path, `rename` gets the (renamed) multi-valued attribute as `parent`.
 */
export function formatFilter(node: FilterNode, rename: (path: string, parent?: string) => string = (p) => p, parent?: string): string {
  switch (node.kind) {
    case 'and':
    case 'or':
      return `(${formatFilter(node.left, rename, parent)} ${node.kind} ${formatFilter(node.right, rename, parent)})`;
    case 'not':
      return `not (${formatFilter(node.filter, rename, parent)})`;
    case 'present':
      return `${rename(node.path, parent)} pr`;
    case 'compare':
      return `${rename(node.path, parent)} ${node.op} ${JSON.stringify(node.value)}`;
    case 'valuePath': {
      const path = rename(node.path, parent);
      return `${path}[${formatFilter(node.filter, rename, path)}]`;
    }
  }
}
