-- Up Migration
-- Right to erasure (docs/erasure.md): provenance of documents, per-subject keys for the personal
-- fields of audit entries, suppression rules and erasure requests with their signed manifests.
-- People are named here only by keyed hashes (HMAC-SHA256 under a per-workspace pseudonym key
-- wrapped by the KEK), so these tables hold no identity in clear.

-- The per-workspace secret behind every pseudonym (erasure/pseudonym.ts).
CREATE TABLE pseudonym_keys (
  workspace_id bigint PRIMARY KEY REFERENCES workspaces ON DELETE CASCADE,
  wrapped_key bytea NOT NULL,
  kek_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Provenance: the people a document concerns, as the connector named them (author of a message or
-- file, or mentioned in it). Chunks, embeddings and vault blobs derive from their document (FK);
-- principal_id is the canonical user the identity resolved to when the document was stored.
CREATE TABLE document_subjects (
  document_id bigint NOT NULL REFERENCES documents ON DELETE CASCADE,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  connection_id bigint NOT NULL REFERENCES connections ON DELETE CASCADE,
  source_user_id text NOT NULL,
  role text NOT NULL CHECK (role IN ('author', 'mentioned')),
  principal_id integer REFERENCES principals ON DELETE SET NULL,
  PRIMARY KEY (document_id, source_user_id, role)
);
CREATE INDEX document_subjects_identity ON document_subjects (connection_id, source_user_id);
CREATE INDEX document_subjects_principal ON document_subjects (principal_id);

-- One data key per person for the personal fields of their audit entries. Destroying it
-- (wrapped_key NULL) crypto-shreds those fields while the hash chain, which covers the sealed bytes,
-- still verifies. `subject` is the pseudonym; it is cleared when the key is destroyed.
CREATE TABLE subject_keys (
  id text PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  subject text,
  wrapped_key bytea,
  kek_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  destroyed_at timestamptz,
  destroyed_by text,
  CHECK ((destroyed_at IS NULL) = (wrapped_key IS NOT NULL AND subject IS NOT NULL AND kek_id IS NOT NULL))
);
CREATE UNIQUE INDEX subject_keys_live ON subject_keys (workspace_id, subject) WHERE destroyed_at IS NULL;

-- One request per subject: a repeat request returns this one's result. Counts are incremented in
-- the same transaction as each deletion, so a crashed and retried activity never miscounts.
CREATE TABLE erasure_requests (
  id text PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  subject text NOT NULL,
  requested_by text NOT NULL,
  reason text,
  requested_at timestamptz NOT NULL,
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed')),
  started_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  footprint jsonb,
  counts jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- Sets the manifest reports beside the counts, e.g. the channels rescheduled for a rebuild.
  notes jsonb NOT NULL DEFAULT '{}'::jsonb,
  destroyed_key_ids text[] NOT NULL DEFAULT '{}',
  audit jsonb,
  manifest text,
  signature bytea,
  public_key text,
  UNIQUE (workspace_id, subject)
);

-- Keyed hashes of a subject's identifiers ('principal:<key>', '<source>:<source user id>'): the
-- pipeline and the Slack connector drop what they would otherwise re-import.
CREATE TABLE erasure_suppressions (
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  identifier bytea NOT NULL CHECK (length(identifier) = 32),
  request_id text NOT NULL REFERENCES erasure_requests ON DELETE CASCADE,
  PRIMARY KEY (workspace_id, identifier)
);

-- Footprint lookups in the audit trail: entries under a subject key, and queries that were shown a document.
CREATE INDEX audit_log_personal_key ON audit_log ((entry->'personal'->>'keyId'));
CREATE INDEX audit_log_documents ON audit_log USING gin ((entry->'documentIds'));

-- Down Migration
DROP INDEX audit_log_documents;
DROP INDEX audit_log_personal_key;
DROP TABLE erasure_suppressions, erasure_requests, subject_keys, document_subjects, pseudonym_keys;
