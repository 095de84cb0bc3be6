-- Up Migration
-- Drive names a file's owner and last modifier by address only; the connector resolves addresses to
-- directory ids of the same connection (db/principals.ts sourceUserIdsByEmail) once per batch.
CREATE INDEX source_identities_email ON source_identities (connection_id, lower(email));

-- Down Migration
DROP INDEX source_identities_email;
