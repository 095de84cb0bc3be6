import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ScimError } from '../api/scim/errors.ts';
import { formatFilter, parseFilter } from '../api/scim/filter-parse.ts';
import { canonicalPatchPath } from '../api/scim/patch.ts';

const text = (filter: string) => formatFilter(parseFilter(filter));

describe('SCIM filter parsing (RFC 7644 §3.4.2.2)', () => {
  test('operators and logical words in any case; and binds tighter than or', () => {
    assert.equal(text('userName Eq "a" OR externalId eq "b" AND active eq true'), '(userName eq "a" or (externalId eq "b" and active eq true))');
    assert.equal(text('(userName eq "a" or externalId eq "b") and active eq true'), '((userName eq "a" or externalId eq "b") and active eq true)');
  });

  test('not around a group and around a value path keeps its meaning', () => {
    assert.deepEqual(parseFilter('not (userName eq "a" and active eq true)'), {
      kind: 'not',
      filter: { kind: 'and', left: { kind: 'compare', path: 'userName', op: 'eq', value: 'a' }, right: { kind: 'compare', path: 'active', op: 'eq', value: true } },
    });
    assert.equal(text('not (emails[type eq "work"])'), 'not (emails[type eq "work"])');
  });

  test('value paths, with a sub-attribute comparison after them (Entra), and two value paths on one attribute', () => {
    assert.equal(text('emails[type eq "work"].value eq "a@b.c"'), 'emails[(type eq "work" and value eq "a@b.c")]');
    assert.equal(text('members[value eq "1"] and members[value eq "2"]'), '(members[value eq "1"] and members[value eq "2"])');
    assert.equal(text('emails[type eq "work" or primary eq true]'), 'emails[(type eq "work" or primary eq true)]');
  });

  test('values: JSON strings with escapes, numbers, booleans, null; presence', () => {
    assert.deepEqual(parseFilter('userName eq "a\\"b"'), { kind: 'compare', path: 'userName', op: 'eq', value: 'a"b' });
    assert.deepEqual(parseFilter('x gt 1.5e3'), { kind: 'compare', path: 'x', op: 'gt', value: 1500 });
    assert.deepEqual(parseFilter('active eq FALSE'), { kind: 'compare', path: 'active', op: 'eq', value: false });
    assert.deepEqual(parseFilter('title eq null'), { kind: 'compare', path: 'title', op: 'eq', value: null });
    assert.deepEqual(parseFilter('title PR'), { kind: 'present', path: 'title' });
    assert.deepEqual(parseFilter('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7"'), {
      kind: 'compare', path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber', op: 'eq', value: '7',
    });
  });

  test('malformed filters are 400 invalidFilter', () => {
    for (const bad of ['', 'userName', 'userName eq', 'userName zz "a"', 'userName eq "a" and', '(userName eq "a"', 'emails[type eq "work"', 'userName eq "unterminated', 'userName eq bareword', '((((((((((((((((((((((((((((((((((a eq 1))))))))))))))))))))))))))))))))))']) {
      assert.throws(() => parseFilter(bad), (err: unknown) => err instanceof ScimError && err.status === 400 && err.scimType === 'invalidFilter', bad);
    }
    assert.throws(() => parseFilter(`userName eq "${'x'.repeat(5000)}"`), ScimError);
  });
});

describe('PATCH paths are canonicalized case-insensitively', () => {
  test('attribute, sub-attribute, filter and extension names take the schema\'s spelling', () => {
    assert.equal(canonicalPatchPath('User', 'NAME.GIVENNAME'), 'name.givenName');
    assert.equal(canonicalPatchPath('User', 'Emails[Type eq "work"].Value'), 'emails[type eq "work"].value');
    assert.equal(canonicalPatchPath('Group', 'Members[VALUE eq "abc"]'), 'members[value eq "abc"]');
    assert.equal(
      canonicalPatchPath('User', 'URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:employeenumber'),
      'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber',
    );
  });
});
