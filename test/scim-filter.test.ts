import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startScimStack, type ScimStack } from './fixtures-scim/stack.ts';

const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

const PEOPLE = [
  { userName: 'ann@acme.test', title: 'Engineer', emails: [{ value: 'ann@acme.test', type: 'work', primary: true }, { value: 'ann@home.test', type: 'home' }], active: true, [ENTERPRISE]: { employeeNumber: '7', department: 'R&D' } },
  { userName: 'Ben@Acme.test', emails: [{ value: 'ben@acme.test', type: 'work' }], active: false, [ENTERPRISE]: { employeeNumber: '12' } },
  { userName: 'cy', displayName: 'Cy "the" Quote', emails: [{ value: 'cy@other.test', type: 'home' }], active: true, externalId: 'EXT-3' },
];

describe('SCIM filters evaluated in Postgres', () => {
  let stack: ScimStack;
  const ids = new Map<string, string>();
  let groupId = '';
  before(async () => {
    stack = await startScimStack();
    for (const p of PEOPLE) {
      const answer = await stack.request('POST', '/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], ...p });
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      ids.set(p.userName.toLowerCase(), String(Reflect.get(Object(answer.body), 'id')));
    }
    const group = await stack.request('POST', '/Groups', { displayName: 'Engineering', members: [{ value: ids.get('ann@acme.test') }] });
    groupId = String(Reflect.get(Object(group.body), 'id'));
  });
  after(async () => {
    await stack?.close();
  });

  async function users(filter: string): Promise<string[]> {
    const answer = await stack.request('GET', `/Users?filter=${encodeURIComponent(filter)}`);
    assert.equal(answer.status, 200, `${filter}: ${JSON.stringify(answer.body)}`);
    const resources: unknown = Reflect.get(Object(answer.body), 'Resources');
    assert.ok(Array.isArray(resources));
    return resources.map((r: unknown) => String(Reflect.get(Object(r), 'userName')).toLowerCase()).sort();
  }

  test('eq on userName is case-insensitive, on externalId case-exact', async () => {
    assert.deepEqual(await users('userName eq "BEN@acme.TEST"'), ['ben@acme.test']);
    assert.deepEqual(await users('externalId eq "EXT-3"'), ['cy']);
    assert.deepEqual(await users('externalId eq "ext-3"'), []);
  });

  test('emails: by any value, by the work value (Entra\'s form), by type and primary', async () => {
    assert.deepEqual(await users('emails.value eq "ANN@HOME.TEST"'), ['ann@acme.test']);
    assert.deepEqual(await users('emails[type eq "work"].value eq "ann@home.test"'), [], 'the home address is not the work one');
    assert.deepEqual(await users('emails[type eq "work"].value eq "ben@acme.test"'), ['ben@acme.test']);
    assert.deepEqual(await users('emails[type eq "work" and primary eq true]'), ['ann@acme.test']);
    assert.deepEqual(await users('emails co "other"'), ['cy']);
  });

  test('and, or, not, pr; not sees absent attributes as false', async () => {
    assert.deepEqual(await users('active eq true and emails[type eq "work"]'), ['ann@acme.test']);
    assert.deepEqual(await users('active eq false or externalId eq "EXT-3"'), ['ben@acme.test', 'cy']);
    assert.deepEqual(await users('not (title eq "Engineer")'), ['ben@acme.test', 'cy']);
    assert.deepEqual(await users('not (emails[type eq "work"])'), ['cy']);
    assert.deepEqual(await users('not (userName eq "cy" or active eq false)'), ['ann@acme.test']);
    assert.deepEqual(await users('title pr'), ['ann@acme.test']);
    assert.deepEqual(await users('title ne "Engineer"'), ['ben@acme.test', 'cy']);
  });

  test('co, sw, ew; quotes inside values; ordering operators', async () => {
    assert.deepEqual(await users('userName sw "AN"'), ['ann@acme.test']);
    assert.deepEqual(await users('userName ew "@acme.test"'), ['ann@acme.test', 'ben@acme.test']);
    assert.deepEqual(await users('displayName co "\\"the\\""'), ['cy']);
    assert.deepEqual(await users('userName gt "b"'), ['ben@acme.test', 'cy']);
    assert.deepEqual(await users('meta.created gt "2000-01-01T00:00:00Z" and meta.lastModified le "2999-01-01T00:00:00Z"'), ['ann@acme.test', 'ben@acme.test', 'cy']);
  });

  test('extension attributes, by full URN path', async () => {
    assert.deepEqual(await users(`${ENTERPRISE}:employeeNumber eq "12"`), ['ben@acme.test']);
    assert.deepEqual(await users(`${ENTERPRISE}:department pr`), ['ann@acme.test']);
  });

  test('group membership from either side', async () => {
    assert.deepEqual(await users(`groups.value eq "${groupId}"`), ['ann@acme.test']);
    const answer = await stack.request('GET', `/Groups?filter=${encodeURIComponent(`members[value eq "${ids.get('ann@acme.test') ?? ''}"] and displayName eq "engineering"`)}`);
    assert.equal(Reflect.get(Object(answer.body), 'totalResults'), 1);
  });

  test('unknown attributes, bad operators and type mismatches are 400 invalidFilter', async () => {
    for (const filter of ['nosuch eq "x"', 'userName zz "x"', 'active gt true', 'active eq "maybe"', 'meta.created gt "not a date"', 'name eq "x"', 'emails[type eq "work"', 'emails[type eq "work"] and emails[value[x eq 1]]']) {
      const answer = await stack.request('GET', `/Users?filter=${encodeURIComponent(filter)}`);
      assert.equal(answer.status, 400, filter);
      assert.equal(Reflect.get(Object(answer.body), 'scimType'), 'invalidFilter', filter);
    }
  });
});
