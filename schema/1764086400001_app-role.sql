-- Up Migration
-- The running application connects as astry_app (scripts/services.sh creates the role; on your own
-- Postgres: CREATE ROLE astry_app LOGIN PASSWORD '…'). It gets DML on every table; later migrations
-- take rights away where a table must be append-only (the audit log).
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'astry_app') THEN
    RAISE EXCEPTION 'role astry_app does not exist: create it first (scripts/services.sh does)';
  END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO astry_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO astry_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO astry_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO astry_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO astry_app;

-- Down Migration
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM astry_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM astry_app;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM astry_app;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM astry_app;
