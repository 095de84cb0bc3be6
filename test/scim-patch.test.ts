import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startScimStack, type ScimStack } from './fixtures-scim/stack.ts';

const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const get = (body: unknown, key: string): unknown => Reflect.get(Object(body), key);

describe('PATCH semantics beyond the golden sequences', () => {
  let s: ScimStack;
  let id = '';
  const patch = (...Operations: unknown[]) => s.request('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations });
  before(async () => {
    s = await startScimStack();
    const created = await s.request('POST', '/Users', {
      userName: 'lee@acme.test', name: { givenName: 'Lee', familyName: 'Park' }, title: 'Analyst',
      emails: [{ value: 'lee@acme.test', type: 'work', primary: true }, { value: 'lee@home.test', type: 'home' }],
      [ENTERPRISE]: { department: 'Finance', employeeNumber: '42' }, active: true,
    });
    assert.equal(created.status, 201);
    id = String(get(created.body, 'id'));
  });
  after(async () => {
    await s?.close();
  });

  test('replacing a complex attribute keeps the sub-attributes it does not name (RFC 7644 §3.5.2.3), with or without a path', async () => {
    assert.deepEqual(get((await patch({ op: 'replace', path: 'name', value: { givenName: 'Leah' } })).body, 'name'), { givenName: 'Leah', familyName: 'Park' });
    assert.deepEqual(get((await patch({ op: 'replace', value: { name: { familyName: 'Kim' } } })).body, 'name'), { givenName: 'Leah', familyName: 'Kim' });
  });

  test('replacing a multi-valued attribute replaces all its values', async () => {
    const emails = [{ value: 'lee@acme.test', type: 'work', primary: true }];
    assert.deepEqual(get((await patch({ op: 'replace', path: 'emails', value: emails })).body, 'emails'), emails);
  });

  test('replace with null and remove clear attributes; removing a whole extension clears it', async () => {
    const cleared = (await patch({ op: 'replace', path: 'title', value: null })).body;
    assert.equal(get(cleared, 'title'), undefined);
    const noExtension = (await patch({ op: 'remove', path: ENTERPRISE })).body;
    assert.equal(get(noExtension, ENTERPRISE), undefined);
    assert.deepEqual(get(noExtension, 'schemas'), ['urn:ietf:params:scim:schemas:core:2.0:User']);
  });

  test('the answer honours attributes=', async () => {
    const answer = await s.request('PATCH', `/Users/${id}?attributes=userName`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'nickName', value: 'L' }] });
    assert.deepEqual(answer.body, { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], id, userName: 'lee@acme.test' });
  });

  test('malformed operations are 400 with the RFC\'s scimType', async () => {
    const cases: [unknown, string][] = [
      [{ schemas: [PATCH], Operations: [{ op: 'frob', path: 'title', value: 'x' }] }, 'invalidSyntax'],
      [{ schemas: [PATCH], Operations: [] }, 'invalidSyntax'],
      [{ schemas: ['urn:wrong'], Operations: [{ op: 'add', path: 'title', value: 'x' }] }, 'invalidSyntax'],
      [{ schemas: [PATCH], Operations: [{ op: 'remove' }] }, 'noTarget'],
      [{ schemas: [PATCH], Operations: [{ op: 'add', path: 'emails[type eq "work"', value: 'x' }] }, 'invalidPath'],
      [{ schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: 'maybe' }] }, 'invalidValue'],
    ];
    for (const [body, scimType] of cases) {
      const answer = await s.request('PATCH', `/Users/${id}`, body);
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.equal(get(answer.body, 'scimType'), scimType, JSON.stringify(answer.body));
    }
    assert.equal(get((await s.request('GET', `/Users/${id}`)).body, 'userName'), 'lee@acme.test', 'nothing changed');
  });
});
