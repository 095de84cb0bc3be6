-- Up Migration
-- When a connection's source credential was last replaced (`astry connections rotate`,
-- PUT /v1/admin/connections/:id/credential); NULL until the first rotation. The sealed secret, its data
-- key and kek_id are overwritten in the same UPDATE (db/connections.ts rotateConnectionSecret).
ALTER TABLE connections ADD COLUMN secret_rotated_at timestamptz;

-- Down Migration
ALTER TABLE connections DROP COLUMN secret_rotated_at;
