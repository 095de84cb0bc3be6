-- Up Migration
-- Grants that expire at the source (Drive expirationTime, Graph link expirationDateTime) stop granting
-- at expiry even without a change event: retrieval requires a matching unexpired grant.
ALTER TABLE document_grants ADD COLUMN expires_at timestamptz;

-- Down Migration
ALTER TABLE document_grants DROP COLUMN expires_at;
