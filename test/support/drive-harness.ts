import type { DriveConfig } from '../../connectors/drive/config.ts';
import { generateDriveCompany } from '../../fixtures/drive/company.ts';
import { DriveEmulator } from '../../fixtures/drive/emulator.ts';
import { CUSTOMER_ID, email } from '../../fixtures/drive/ids.ts';
import type { ActivityDeps } from '../../workflows/activities/index.ts';
import { SYNC_WORKFLOW_BY_SOURCE } from '../../workflows/constants.ts';
import { startSyncBase, type SyncBase } from './sync-base.ts';

/** Small back-off for tests (production: 8 attempts from 1 s). */
export const TEST_DRIVE_RETRY = { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 100 };

/** Real Postgres (fresh database), real Temporal (own task queue), the Drive emulator, the real model. */
export interface DriveHarness extends SyncBase<ActivityDeps> {
  emulator: DriveEmulator;
  /** Source ids a person (`alice`) or a principal key can retrieve through searchAuthorized with their principal set. */
  readable(who: string): Promise<Set<string>>;
}

export interface DriveHarnessOptions {
  fillerFiles?: number;
  worker?: boolean;
  /** Connection config on top of the emulator's rootUrl and the test back-off. */
  config?: Partial<DriveConfig>;
}

/** The principal key of a seeded person (`alice` -> `email:alice@ex.com`), or an external's. */
export function principalKeyOf(who: string): string {
  if (who.includes(':')) return who;
  return who.includes('@') ? `drive:${CUSTOMER_ID}:user:${who}` : `email:${email(who)}`;
}

export async function startDriveHarness(opts: DriveHarnessOptions = {}): Promise<DriveHarness> {
  const emulator = await DriveEmulator.start(generateDriveCompany({ fillerFiles: opts.fillerFiles ?? 0 }));
  const base = await startSyncBase<ActivityDeps>({
    name: 'drive', source: 'drive', workflow: SYNC_WORKFLOW_BY_SOURCE.drive, emulator,
    connection: { name: 'drive', token: emulator.token, config: { rootUrl: emulator.rootUrl, retry: TEST_DRIVE_RETRY, ...opts.config } },
    ...(opts.worker === undefined ? {} : { worker: opts.worker }),
  });
  const [queryVector = []] = await base.deps.embedder.embed(['document notes codeword']);
  return Object.assign(base, {
    emulator,
    async readable(who: string) {
      const { rows } = await base.db.pool.query<{ id: number }>(
        `SELECT id FROM principals WHERE workspace_id = $1 AND kind = 'user' AND key = $2`, [base.workspaceId, principalKeyOf(who)],
      );
      return base.retrievableBy(rows[0]?.id, queryVector);
    },
  });
}
