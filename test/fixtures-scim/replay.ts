/**
 * Replays a golden SCIM request sequence (test/fixtures-scim/*.json) against a live endpoint:
 * each step's request is sent with the workspace token, its answer matched against the expected
 * status, headers and body (a subset match), ids saved for later steps, and database effects checked
 * (the canonical principal's active flag, the user's principal set).
 *
 * Placeholders: `{{name}}` is a saved value; `"{{*}}"` matches any present value; `"{{absent}}"`
 * requires the key to be missing.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { principalSet } from '../../db/principals.ts';
import type { ScimStack } from './stack.ts';

const DbCheck = z.union([
  z.object({ principal: z.string(), active: z.boolean().optional(), clearance: z.number().nullable().optional() }),
  z.object({ noPrincipal: z.string() }),
  z.object({ principalSet: z.string(), includesGroups: z.array(z.string()).optional(), excludesGroups: z.array(z.string()).optional() }),
]);

const Step = z.object({
  name: z.string(),
  request: z.object({ method: z.string(), path: z.string(), body: z.unknown().optional() }),
  expect: z.object({ status: z.number().int(), headers: z.record(z.string(), z.string()).optional(), body: z.unknown().optional() }),
  save: z.record(z.string(), z.string()).optional(),
  db: z.array(DbCheck).optional(),
});
export type GoldenStep = z.infer<typeof Step>;

const Golden = z.object({ idp: z.string(), source: z.string(), steps: z.array(Step).min(1) });
export type GoldenSequence = z.infer<typeof Golden>;

export async function loadGolden(name: string): Promise<GoldenSequence> {
  return Golden.parse(JSON.parse(await readFile(new URL(`./${name}.json`, import.meta.url), 'utf8')));
}

function substitute(value: unknown, vars: ReadonlyMap<string, string>): unknown {
  if (typeof value === 'string') {
    return value.replace(/\{\{(\w+)\}\}/g, (whole, name: string) => vars.get(name) ?? whole);
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]));
  return value;
}

/** Asserts that `actual` contains `expected` (objects: listed keys; arrays: same length, element-wise). */
export function assertSubset(actual: unknown, expected: unknown, at = '$'): void {
  if (expected === '{{*}}') {
    assert.notEqual(actual, undefined, `${at}: expected a value`);
    return;
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${at}: expected an array, got ${JSON.stringify(actual)}`);
    assert.equal(actual.length, expected.length, `${at}: expected ${expected.length} elements, got ${JSON.stringify(actual)}`);
    expected.forEach((e, i) => assertSubset(actual[i], e, `${at}[${i}]`));
    return;
  }
  if (typeof expected === 'object' && expected !== null) {
    assert.ok(typeof actual === 'object' && actual !== null && !Array.isArray(actual), `${at}: expected an object, got ${JSON.stringify(actual)}`);
    const record: Record<string, unknown> = { ...actual };
    for (const [key, e] of Object.entries(expected)) {
      if (e === '{{absent}}') assert.ok(!(key in record), `${at}.${key}: expected absent, got ${JSON.stringify(record[key])}`);
      else assertSubset(record[key], e, `${at}.${key}`);
    }
    return;
  }
  assert.deepEqual(actual, expected, `${at}`);
}

function pick(body: unknown, path: string): string {
  let value: unknown = body;
  for (const part of path.split('.')) {
    value = typeof value === 'object' && value !== null ? Reflect.get(value, part) : undefined;
  }
  if (typeof value !== 'string') throw new Error(`no string at ${path} in ${JSON.stringify(body)}`);
  return value;
}

/** Replays `golden` step by step; `onStep` runs after each step (latency collection, extra checks). */
export async function replay(
  stack: ScimStack, golden: GoldenSequence, onStep?: (step: GoldenStep, ms: number) => void,
): Promise<Map<string, string>> {
  const vars = new Map<string, string>();
  const groupPrincipals = new Map<string, number>();
  const userPrincipal = async (key: string) => {
    const { rows } = await stack.db.pool.query<{ id: number; active: boolean; clearance: number | null }>(
      `SELECT id, active, clearance FROM principals WHERE workspace_id = $1 AND kind = 'user' AND key = $2`, [stack.workspaceId, key],
    );
    return rows[0];
  };
  const groupPrincipal = async (scimId: string) => {
    const { rows } = await stack.db.pool.query<{ principal_id: number }>(`SELECT principal_id FROM scim_resources WHERE id = $1`, [scimId]);
    const id = rows[0]?.principal_id ?? groupPrincipals.get(scimId);
    if (id !== undefined) groupPrincipals.set(scimId, id);
    return id;
  };
  for (const raw of golden.steps) {
    const step = Step.parse(substitute(raw, vars));
    const label = `${golden.idp}: ${step.name}`;
    const started = performance.now();
    const answer = await stack.request(step.request.method, step.request.path, step.request.body);
    onStep?.(step, performance.now() - started);
    assert.equal(answer.status, step.expect.status, `${label}: status ${answer.status}, body ${JSON.stringify(answer.body)}`);
    for (const [name, value] of Object.entries(step.expect.headers ?? {})) assert.equal(answer.headers.get(name), value, `${label}: header ${name}`);
    if (step.expect.body !== undefined) {
      try {
        assertSubset(answer.body, step.expect.body);
      } catch (err) {
        throw new Error(`${label}: ${err instanceof Error ? err.message : String(err)}\nbody: ${JSON.stringify(answer.body)}`, { cause: err });
      }
    }
    for (const [name, path] of Object.entries(step.save ?? {})) vars.set(name, pick(answer.body, path));
    for (const check of step.db ?? []) {
      if ('noPrincipal' in check) {
        assert.equal(await userPrincipal(check.noPrincipal), undefined, `${label}: no principal ${check.noPrincipal}`);
      } else if ('principal' in check) {
        const p = await userPrincipal(check.principal);
        assert.ok(p, `${label}: principal ${check.principal} exists`);
        if (check.active !== undefined) assert.equal(p.active, check.active, `${label}: ${check.principal} active`);
        if (check.clearance !== undefined) assert.equal(p.clearance, check.clearance, `${label}: ${check.principal} clearance`);
      } else {
        const p = await userPrincipal(check.principalSet);
        assert.ok(p, `${label}: principal ${check.principalSet} exists`);
        const set = new Set(await principalSet(stack.db.pool, p.id));
        for (const g of check.includesGroups ?? []) {
          const id = await groupPrincipal(g);
          assert.ok(id !== undefined && set.has(id), `${label}: ${check.principalSet}'s principal set includes group ${g}`);
        }
        for (const g of check.excludesGroups ?? []) {
          const id = await groupPrincipal(g);
          assert.ok(id === undefined || !set.has(id), `${label}: ${check.principalSet}'s principal set excludes group ${g}`);
        }
      }
    }
  }
  return vars;
}
