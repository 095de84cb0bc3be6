/**
 * Real Postgres (fresh database), real Temporal (own task queue), the Graph emulator over HTTPS,
 * the real model; and "what can this person retrieve", answered through searchAuthorized.
 */
import { GraphEmulator } from '../../fixtures/graph/emulator.ts';
import { FILES, PEOPLE, USER, type FileKey, type Person } from '../../fixtures/graph/ids.ts';
import { generateTenant, type TenantOptions } from '../../fixtures/graph/tenant.ts';
import type { GraphActivityDeps } from '../../workflows/graph/activities.ts';
import { principalOfSourceUser } from './access.ts';
import { startSyncBase, type SyncBase } from './sync-base.ts';

/** Graph retry budget for tests: Retry-After is honoured, 3 retries per call, then the activity retries. */
export const TEST_GRAPH_RETRY = { maxRetries: 3, delaySeconds: 0 };

export interface GraphHarness extends SyncBase<GraphActivityDeps> {
  emulator: GraphEmulator;
  /** Source ids (`item:<drive>:<item>`) of the documents `person` can retrieve through the query path. */
  retrievable(person: Person | string): Promise<Set<string>>;
  /** The source id of a named file. */
  sourceId(file: FileKey): string;
}

/** Who should read a named file: its readers with 'internal' expanded to every enabled member. */
export function expectedReaders(emulator: GraphEmulator, file: FileKey): Set<string> {
  const internal = emulator.state.tenant.users.filter((u) => u.userType === 'Member' && u.accountEnabled).map((u) => u.id);
  return new Set(FILES[file].readers.flatMap((r) => (r === 'internal' ? internal : [USER[r]])));
}

/** The seeded people's Entra ids, plus two filler members. */
export function everyone(emulator: GraphEmulator): { name: string; id: string }[] {
  const fillers = emulator.state.tenant.users.filter((u) => !Object.values(USER).includes(u.id)).slice(0, 2);
  return [...PEOPLE.map((p) => ({ name: p, id: USER[p] })), ...fillers.map((u) => ({ name: u.displayName, id: u.id }))];
}

export async function startGraphHarness(opts: { tenant?: TenantOptions; worker?: boolean; notificationBaseUrl?: string } = {}): Promise<GraphHarness> {
  const emulator = await GraphEmulator.start(generateTenant(opts.tenant ?? {}));
  const tenant = emulator.state.tenant;
  const base = await startSyncBase<GraphActivityDeps>({
    name: 'graph', source: 'graph', workflow: 'syncGraphWorkflow', emulator,
    connection: {
      name: 'm365', token: tenant.clientSecret,
      config: {
        graphUrl: emulator.graphUrl, authorityUrl: emulator.authorityUrl, tenantId: tenant.tenantId, clientId: tenant.clientId, caPem: emulator.caPem,
        ...(opts.notificationBaseUrl ? { notificationBaseUrl: opts.notificationBaseUrl } : {}),
      },
    },
    deps: { graphRetry: TEST_GRAPH_RETRY },
    ...(opts.worker === undefined ? {} : { worker: opts.worker }),
  });
  const [probe = []] = await base.deps.embedder.embed(['what do the documents say']);
  return Object.assign(base, {
    emulator,
    async retrievable(person: Person | string) {
      const entraId = person in USER ? USER[person as Person] : person;
      return base.retrievableBy((await principalOfSourceUser(base.db.pool, base.connectionId, entraId)) ?? undefined, probe);
    },
    sourceId(file: FileKey) {
      const spec = FILES[file];
      const site = emulator.state.site(spec.site);
      if (!site) throw new Error(`no site ${spec.site}`);
      return `item:${site.driveId}:${emulator.state.itemByPath(site.driveId, spec.path).id}`;
    },
  });
}
