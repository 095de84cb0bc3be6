-- Up Migration
-- The audit trail: a hash chain (audit/chain.ts) with signed checkpoints (audit/checkpoint.ts).
-- Append-only twice over: the application role loses UPDATE/DELETE/TRUNCATE, and triggers refuse
-- them for everyone else too (the owner must visibly DISABLE TRIGGER, which verification then catches
-- through the chain and the checkpoint files kept outside the database).
-- workspace_id is text with no foreign key: the trail must outlive workspaces and erasures.

CREATE TABLE audit_log (
  -- Assigned by the writer as last seq + 1 under a transaction-level advisory lock: gap-free, in order.
  seq bigint PRIMARY KEY CHECK (seq >= 1),
  -- The event's own id: re-draining a spool after a crash skips what is already stored.
  event_id uuid NOT NULL UNIQUE,
  workspace_id text NOT NULL,
  at timestamptz NOT NULL,
  -- The canonical event (audit/entry.ts); event_id, workspace_id and at are copies checked by verify.
  entry jsonb NOT NULL CHECK (jsonb_typeof(entry) = 'object'),
  prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
  -- sha256(prev_hash || canonical({seq, entry})).
  hash bytea NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_log_workspace ON audit_log (workspace_id, at);

-- Ed25519 signatures over {seq, hash, at, keyId}; the same checkpoints are also written as files
-- outside the database, which is what catches a truncated tail.
CREATE TABLE audit_checkpoints (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  seq bigint NOT NULL CHECK (seq >= 1),
  hash bytea NOT NULL CHECK (length(hash) = 32),
  signature bytea NOT NULL,
  key_id text NOT NULL,
  at timestamptz NOT NULL
);
CREATE INDEX audit_checkpoints_seq ON audit_checkpoints (seq);

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, audit_checkpoints FROM astry_app;
GRANT SELECT, INSERT ON audit_log, audit_checkpoints TO astry_app;

CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END
$$;

CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- Down Migration
-- Rolling back must not be a way to erase the trail: refuse while it holds anything.
DO $$
BEGIN
  IF EXISTS (SELECT FROM audit_log) OR EXISTS (SELECT FROM audit_checkpoints) THEN
    RAISE EXCEPTION 'audit_log is not empty: refusing to drop the audit trail';
  END IF;
END
$$;
DROP TABLE audit_checkpoints, audit_log;
DROP FUNCTION audit_refuse_change();
