import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { outcomeOf } from '../api/admin/guard.ts';
import { ADMIN_ROLE, COMPLIANCE_ROLE, hasRole, rolesOf } from '../api/admin/roles.ts';

describe('admin roles from a token claim', () => {
  test('an array of roles grants exactly the roles it lists', () => {
    const claims = { roles: [ADMIN_ROLE, 'other'] };
    assert.equal(hasRole(claims, 'roles', ADMIN_ROLE), true);
    assert.equal(hasRole(claims, 'roles', COMPLIANCE_ROLE), false, 'admin does not imply compliance');
  });

  test('a single string is one role, never split', () => {
    assert.equal(hasRole({ roles: ADMIN_ROLE }, 'roles', ADMIN_ROLE), true);
    for (const joined of [`${ADMIN_ROLE} ${COMPLIANCE_ROLE}`, `${ADMIN_ROLE},${COMPLIANCE_ROLE}`]) {
      assert.equal(hasRole({ roles: joined }, 'roles', ADMIN_ROLE), false, joined);
      assert.equal(hasRole({ roles: joined }, 'roles', COMPLIANCE_ROLE), false, joined);
    }
  });

  test('a claim that cannot be read grants nothing', () => {
    for (const value of [undefined, null, 1, true, { [ADMIN_ROLE]: true }, [ADMIN_ROLE, 1], [[ADMIN_ROLE]]]) {
      assert.equal(hasRole({ roles: value }, 'roles', ADMIN_ROLE), false, JSON.stringify(value));
    }
    assert.equal(rolesOf({}, 'roles').size, 0);
  });

  test('roles are compared exactly: case, spacing and prefixes matter', () => {
    for (const near of ['ASTRY.ADMIN', ` ${ADMIN_ROLE}`, `${ADMIN_ROLE} `, 'astry.admins', 'astry', 'admin']) {
      assert.equal(hasRole({ roles: [near] }, 'roles', ADMIN_ROLE), false, near);
    }
  });

  test('only the configured claim counts', () => {
    const okta = { groups: [ADMIN_ROLE] };
    assert.equal(hasRole(okta, 'roles', ADMIN_ROLE), false);
    assert.equal(hasRole(okta, 'groups', ADMIN_ROLE), true);
    // An inherited property is no claim.
    assert.equal(hasRole(Object.create({ roles: [ADMIN_ROLE] }), 'roles', ADMIN_ROLE), false);
  });

  test('audit outcomes follow the answered status', () => {
    assert.deepEqual([200, 202, 400, 401, 403, 404, 409, 500, 503].map(outcomeOf), [
      'succeeded', 'succeeded', 'invalid', 'refused_unauthenticated', 'refused_forbidden', 'not_found', 'conflict', 'failed', 'unavailable',
    ]);
  });
});
