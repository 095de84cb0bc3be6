-- Up Migration
-- Astry's system of record. Every row carries a workspace id. Principal ids are int4 because ACLs
-- are stored as GIN-indexed int[] on chunk rows, intersected with the asker's principal set inside
-- the retrieval query (measured: recall 1.0 at 0.5-5% selectivity where HNSW post-filtering fell short).

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE workspaces (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- A connected source. Credentials are sealed with a per-connection data key wrapped by the KEK.
CREATE TABLE connections (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  source text NOT NULL CHECK (source IN ('slack', 'graph', 'drive')),
  name text NOT NULL,
  config jsonb NOT NULL DEFAULT '{}'::jsonb,
  sealed_secret bytea NOT NULL,
  wrapped_dek bytea NOT NULL,
  kek_id text NOT NULL,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (workspace_id, name)
);

-- Delta cursors, one per connection and scope (e.g. 'channel:C123'); committed only after the
-- documents they cover are stored.
CREATE TABLE sync_cursors (
  connection_id bigint NOT NULL REFERENCES connections ON DELETE CASCADE,
  scope text NOT NULL,
  cursor jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (connection_id, scope)
);

-- Users (canonical people), groups (e.g. a channel's member list) and org-wide specials
-- (e.g. "all full members of Slack workspace T1").
CREATE TABLE principals (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('user', 'group', 'special')),
  key text NOT NULL,
  display_name text NOT NULL DEFAULT '',
  email text,
  active boolean NOT NULL DEFAULT true,
  UNIQUE (workspace_id, kind, key)
);

-- A person's account in a source, linked to a canonical user principal.
CREATE TABLE source_identities (
  connection_id bigint NOT NULL REFERENCES connections ON DELETE CASCADE,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  source_user_id text NOT NULL,
  principal_id integer NOT NULL REFERENCES principals ON DELETE CASCADE,
  display_name text NOT NULL DEFAULT '',
  email text,
  identity_kind text NOT NULL CHECK (identity_kind IN ('member', 'guest_multi', 'guest_single', 'external', 'bot')),
  active boolean NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (connection_id, source_user_id)
);
CREATE INDEX source_identities_principal ON source_identities (principal_id);

-- Group and special membership; members may be users or groups (nested). Rows are owned by the
-- connection that reported them, so a sync replaces exactly its own view of a group.
CREATE TABLE memberships (
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  group_id integer NOT NULL REFERENCES principals ON DELETE CASCADE,
  member_id integer NOT NULL REFERENCES principals ON DELETE CASCADE,
  connection_id bigint NOT NULL REFERENCES connections ON DELETE CASCADE,
  PRIMARY KEY (group_id, member_id, connection_id),
  CHECK (group_id <> member_id)
);
CREATE INDEX memberships_member ON memberships (member_id);

CREATE TABLE documents (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  connection_id bigint NOT NULL REFERENCES connections ON DELETE CASCADE,
  source_id text NOT NULL,
  container_id text NOT NULL,
  kind text NOT NULL,
  url text NOT NULL,
  -- Source-side version marker; unchanged => content is not fetched or embedded again.
  content_version text NOT NULL,
  -- Bumped on every content change; bound into the AAD of the blob and chunk ciphertexts.
  version integer NOT NULL DEFAULT 1,
  -- sha256 over the sorted granted principal keys; unchanged => no ACL write.
  acl_hash text NOT NULL,
  wrapped_dek bytea NOT NULL,
  kek_id text NOT NULL,
  source_updated_at timestamptz NOT NULL,
  indexed_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (connection_id, source_id)
);
CREATE INDEX documents_container ON documents (connection_id, container_id);

-- Per-document grants: the document is readable by the members of any granted principal.
CREATE TABLE document_grants (
  document_id bigint NOT NULL REFERENCES documents ON DELETE CASCADE,
  principal_id integer NOT NULL REFERENCES principals ON DELETE CASCADE,
  PRIMARY KEY (document_id, principal_id)
);
CREATE INDEX document_grants_principal ON document_grants (principal_id);

-- The extracted document (title + text), sealed with the document's data key.
CREATE TABLE vault_blobs (
  document_id bigint PRIMARY KEY REFERENCES documents ON DELETE CASCADE,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  version integer NOT NULL,
  sealed bytea NOT NULL
);

-- Chunks carry a copy of their document's grants (acl) so retrieval filters by ACL in the same
-- query as the vector search; ACL-only changes rewrite this column and never re-embed.
CREATE TABLE chunks (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  document_id bigint NOT NULL REFERENCES documents ON DELETE CASCADE,
  ordinal integer NOT NULL,
  acl integer[] NOT NULL,
  embedding vector(384) NOT NULL,
  sealed_text bytea NOT NULL,
  token_count integer NOT NULL,
  UNIQUE (document_id, ordinal)
);
CREATE INDEX chunks_acl ON chunks USING gin (acl);
-- pgvector 0.8.0 has a parallel HNSW build bug (fixed in 0.8.2): build without parallel workers.
SET LOCAL max_parallel_maintenance_workers = 0;
CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops);

CREATE TABLE sync_runs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  connection_id bigint NOT NULL REFERENCES connections ON DELETE CASCADE,
  workflow_id text NOT NULL,
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  docs_indexed integer NOT NULL DEFAULT 0,
  docs_unchanged integer NOT NULL DEFAULT 0,
  docs_acl_updated integer NOT NULL DEFAULT 0,
  docs_deleted integer NOT NULL DEFAULT 0,
  chunks_written integer NOT NULL DEFAULT 0,
  errors integer NOT NULL DEFAULT 0,
  failure text,
  UNIQUE (workflow_id)
);
CREATE INDEX sync_runs_connection ON sync_runs (connection_id, started_at DESC);

-- One row per item that failed in a run (bad file, oversize, extractor crash, source error).
CREATE TABLE sync_errors (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id bigint NOT NULL REFERENCES sync_runs ON DELETE CASCADE,
  connection_id bigint NOT NULL REFERENCES connections ON DELETE CASCADE,
  item_id text NOT NULL,
  code text NOT NULL,
  message text NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_errors_run ON sync_errors (run_id);

-- Down Migration
DROP TABLE sync_errors, sync_runs, chunks, vault_blobs, document_grants, documents, memberships,
  source_identities, principals, sync_cursors, connections, workspaces;
