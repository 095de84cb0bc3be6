/** Inputs and outputs of the Drive sync workflow and its activities (plain data: crosses Temporal). */

/** A change log: `mydrive` or a shared drive id. */
export type DriveScope = string;

export const MY_DRIVE: DriveScope = 'mydrive';

export interface DriveRunIds {
  connectionId: string;
  runId: string;
}

export interface DrivePlan {
  /** False when the connection is paused: the run ends without touching anything. */
  active: boolean;
  /** Change logs to sync this run: My Drive, then every shared drive. */
  scopes: DriveScope[];
  /** Documents deleted because their shared drive is gone (or out of reach). */
  deletedDocuments: number;
  /** The ACL context every scope of this run maps permissions with (one directory snapshot). */
  acl: PlainAclContext;
}

/** AclContext as plain data. */
export interface PlainAclContext {
  customerId: string;
  domains: string[];
  inactive: string[];
}

export interface DriveScopeResult {
  scope: DriveScope;
  /** True when the scope was (re-)listed in full this run. */
  listed: boolean;
  /** Change entries processed. */
  changes: number;
  /** Files whose document was written, ACL-updated, found unchanged or deleted. */
  files: number;
}

export interface DriveSyncProgress {
  phase: 'starting' | 'principals' | 'scopes' | 'done' | 'skipped';
  scopesDone: number;
  scopesTotal: number;
  currentScope: string | null;
}

export interface DriveSyncSummary {
  runId: string;
  status: 'succeeded' | 'skipped';
  scopes: number;
}
