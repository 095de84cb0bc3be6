import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalJson } from '../audit/canonical.ts';
import { chainHash, GENESIS_HASH } from '../audit/chain.ts';
import { toEntry } from '../audit/entry.ts';

describe('canonical JSON', () => {
  test('sorts keys at every depth and writes no whitespace', () => {
    assert.equal(canonicalJson({ b: [3, { z: 1, a: null }], a: 'x', é: true, B: false }), '{"B":false,"a":"x","b":[3,{"a":null,"z":1}],"é":true}');
  });

  test('sorts keys by UTF-16 code units, as RFC 8785 does', () => {
    assert.equal(canonicalJson({ '\u{1F600}': 1, '\uFB33': 2 }), '{"\u{1F600}":1,"\uFB33":2}');
  });

  test('writes numbers as ECMAScript does, and -0 as 0', () => {
    assert.equal(canonicalJson([1e21, 1e-7, 0.1, -0, 5e-324, 2 ** 53]), '[1e+21,1e-7,0.1,0,5e-324,9007199254740992]');
  });

  test('refuses what JSON cannot carry faithfully instead of dropping or coercing it', () => {
    for (const bad of [NaN, Infinity, undefined, () => 1, Symbol('s'), 1n, new Date(0), new Map(), Buffer.from('x'), { a: undefined }, new Array(3), 'a\u0000b', '\uD800', { ['\uDC00']: 1 }]) {
      assert.throws(() => canonicalJson(bad), TypeError, String(bad));
    }
  });

  test('equal values give equal bytes whatever their key order', () => {
    assert.equal(canonicalJson({ x: 1, y: { p: [1, 2], q: 'r' } }), canonicalJson({ y: { q: 'r', p: [1, 2] }, x: 1 }));
  });
});

describe('audit entries and the chain', () => {
  test('an event becomes an entry with an id and a millisecond UTC time', () => {
    const entry = toEntry({ workspaceId: '1', type: 'query', actor: 'u1', at: '2025-03-01T10:00:00+02:00', outcome: 'answered' });
    assert.match(entry.id, /^[0-9a-f-]{36}$/);
    assert.equal(entry.at, '2025-03-01T08:00:00.000Z');
    assert.deepEqual(Object.keys(entry).sort(), ['actor', 'at', 'id', 'outcome', 'type', 'workspaceId']);
  });

  test('an event that could not be stored faithfully is refused at once', () => {
    const base = { workspaceId: '1', type: 'query', actor: 'u1', outcome: 'answered' };
    assert.throws(() => toEntry({ ...base, costUsd: NaN }));
    assert.throws(() => toEntry({ ...base, at: 'yesterday' }));
    assert.throws(() => toEntry({ ...base, details: { f: () => 1 } }));
    assert.throws(() => toEntry({ ...base, details: { s: 'nul\u0000' } }));
    assert.throws(() => toEntry({ ...base, workspaceId: '' }));
  });

  test('the hash covers the seq and every byte of the entry', () => {
    const entry = toEntry({ workspaceId: '1', type: 'query', actor: 'u1', outcome: 'answered' });
    const h = chainHash(GENESIS_HASH, 1, entry);
    assert.equal(h.length, 32);
    assert.ok(!h.equals(chainHash(GENESIS_HASH, 2, entry)));
    assert.ok(!h.equals(chainHash(GENESIS_HASH, 1, { ...entry, outcome: 'refused' })));
    assert.ok(!h.equals(chainHash(Buffer.alloc(32, 1), 1, entry)));
    assert.ok(h.equals(chainHash(GENESIS_HASH, 1, JSON.parse(JSON.stringify(entry)))));
  });
});
