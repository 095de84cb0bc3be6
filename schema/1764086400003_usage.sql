-- Up Migration
-- Real model spend per query, for per-user daily budgets and cost reporting.
CREATE TABLE usage_ledger (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  principal_id integer NOT NULL REFERENCES principals ON DELETE CASCADE,
  request_id text NOT NULL UNIQUE,
  at timestamptz NOT NULL DEFAULT now(),
  provider text NOT NULL,
  model text NOT NULL,
  input_tokens integer NOT NULL,
  output_tokens integer NOT NULL,
  tool_calls integer NOT NULL,
  usd numeric(12, 6) NOT NULL
);
CREATE INDEX usage_ledger_principal_day ON usage_ledger (principal_id, at);

-- Down Migration
DROP TABLE usage_ledger;
