/**
 * The context each kind of data key is wrapped under (bound into the wrap: AAD here, an encryption
 * context in a KMS). Defined once: the code that wraps and unwraps a key and the KEK rotation, which
 * re-wraps every key (vault/rewrap.ts), must agree on them byte for byte.
 */

/** A connection's credentials (db/connections.ts). */
export const connectionKeyContext = (workspaceId: string, connectionName: string): string => `astry/connection-key/${workspaceId}/${connectionName}`;

/** One version of one document (pipeline/store.ts). */
export const documentKeyContext = (workspaceId: string, documentId: string, version: number): string =>
  `astry/document-key/${workspaceId}/${documentId}/${version}`;

/** One answered Slack thread turn (slackbot/conversation.ts). */
export const slackTurnKeyContext = (workspaceId: string, requestId: string): string => `astry/slack-turn-key/${workspaceId}/${requestId}`;

/** The workspace's pseudonym key (erasure/pseudonym.ts). */
export const pseudonymKeyContext = (workspaceId: string): string => `astry/pseudonym-key/${workspaceId}`;

/** A data subject's key for the personal fields of audit entries (erasure/personal.ts). */
export const subjectKeyContext = (workspaceId: string, subjectKeyId: string): string => `astry/subject-key/${workspaceId}/${subjectKeyId}`;
