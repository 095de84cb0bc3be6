/**
 * What every connector hands the pipeline. Connectors speak in source terms; the store maps
 * principal references to integer principal ids (the ACL arrays on chunk rows).
 */

/** Kinds of principal. `special` is an org-wide audience such as "all full members of Slack workspace T1". */
export type PrincipalKind = 'user' | 'group' | 'special';

/**
 * A principal named by a stable key. Users: `email:<lowercased verified email>` when the source
 * gives one (this is how identities of one person link across sources), else `<source>:<tenant>:<user id>`.
 * Groups and specials: `<source>:<tenant>:<what>`, e.g. `slack:T1:channel:C1`, `slack:T1:members`.
 */
export interface PrincipalRef {
  kind: PrincipalKind;
  key: string;
}

/** A grant on a document: a principal, optionally only until the source's expiry time. */
export interface Grant extends PrincipalRef {
  /** When the source says this grant stops (e.g. Drive expirationTime); enforced at query time. */
  expiresAt?: Date | null;
}

/** How a source classifies a person; drives which org-wide specials they belong to. */
export type IdentityKind = 'member' | 'guest_multi' | 'guest_single' | 'external' | 'bot';

/** One person's account in a source, linked to a canonical user principal. */
export interface SourceIdentity {
  /** The source's own user id (Slack `U…`). */
  sourceUserId: string;
  displayName: string;
  email: string | null;
  kind: IdentityKind;
  /** False for deactivated accounts: they are never granted anything. */
  active: boolean;
  /** The canonical user this identity resolves to. */
  user: PrincipalRef;
}

/** The complete current member list of one group or special; replaces what was stored before. */
export interface GroupMembers {
  group: PrincipalRef;
  displayName: string;
  members: PrincipalRef[];
}

/** Lazily fetched content: text inline, files downloaded only when the pipeline needs them. */
export type DocumentContent =
  | { type: 'text'; text: string }
  | { type: 'file'; fileName: string; mimeType: string; sizeBytes: number; fetch: () => Promise<Buffer> };

/** A person a document concerns, named by their id in the source: provenance for erasure. */
export interface DocumentSubject {
  /** As SourceIdentity.sourceUserId: Slack `U…`, Entra object id, Google directory user id. */
  sourceUserId: string;
  /**
   * `author`: wrote (part of) it, or created, owns or last modified the file; `mentioned`: named in it
   * (e.g. a Slack `<@U…>` mention).
   */
  role: 'author' | 'mentioned';
}

/** One indexable unit (a Slack thread, a channel's day of loose messages, a file). */
export interface SourceDocument {
  /** Stable id within the connection, e.g. `thread:C1:1700000000.000100`. */
  sourceId: string;
  /** The container the document lives in (Slack channel id), for reporting. */
  containerId: string;
  kind: 'slack_thread' | 'slack_day' | 'slack_file' | 'graph_file' | 'drive_file';
  title: string;
  url: string;
  /** Changes whenever the content changes (a hash of the text, or file id + modification stamp). */
  contentVersion: string;
  /** Source time of the newest content in the document. */
  updatedAt: Date;
  /** Principals granted read access; the document is readable by the union of their members. */
  acl: Grant[];
  content: DocumentContent;
  /**
   * The people this document concerns (authors, mentioned people), recorded as its provenance so an
   * erasure can find it and a suppression rule can refuse it. Absent: the connector does not say.
   */
  subjects?: DocumentSubject[];
}

/** A failure confined to one item; the run records it and goes on. */
export interface ItemError {
  itemId: string;
  code: string;
  message: string;
}
