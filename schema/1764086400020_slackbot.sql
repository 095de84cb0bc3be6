-- Up Migration
-- Conversation history of Slack threads the bot answered in, so a follow-up keeps its context.
-- One row per answered question. Question and answer quote indexed content, so they are sealed like
-- document text (AES-256-GCM under a per-row data key wrapped by the KEK; AAD binds workspace and row).
-- Kept for a bounded time (the bot deletes rows older than its retention on every write).
CREATE TABLE slack_turns (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  connection_id bigint NOT NULL REFERENCES connections ON DELETE CASCADE,
  channel_id text NOT NULL,
  thread_ts text NOT NULL,
  -- The asker: erasing a person erases the questions they asked.
  principal_id integer NOT NULL REFERENCES principals ON DELETE CASCADE,
  request_id text NOT NULL UNIQUE,
  sealed bytea NOT NULL,
  wrapped_dek bytea NOT NULL,
  kek_id text NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX slack_turns_thread ON slack_turns (connection_id, channel_id, thread_ts, id DESC);
CREATE INDEX slack_turns_at ON slack_turns (at);
GRANT SELECT, INSERT, DELETE ON slack_turns TO astry_app;

-- Down Migration
DROP TABLE slack_turns;
