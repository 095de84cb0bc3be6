/** Inputs and outputs of the Graph sync workflow and its activities (plain data: crosses Temporal). */

/** One document library to sync. */
export interface GraphDriveRef {
  driveId: string;
  siteId: string;
  /** `<site display name> / <library name>`, for progress. */
  name: string;
}

export interface GraphPrincipalsResult {
  /** False when the connection is paused: the run ends without touching anything. */
  active: boolean;
  drives: GraphDriveRef[];
  deletedDocuments: number;
}

export interface GraphDriveResult {
  driveId: string;
  /** Items delta reported in this run (files and folders). */
  changes: number;
  /** Stored files whose ACL was recomputed because an ancestor folder moved or its sharing changed. */
  recomputed: number;
  /** True when Graph answered 410 and the drive was enumerated again from scratch. */
  resynced: boolean;
}
