-- Up Migration
-- Identity lifecycle: SCIM 2.0 provisioning (RFC 7643/7644). SCIM users ARE the canonical users:
-- a SCIM User is a `principals` row (kind 'user', key 'email:<lowercased work email or userName>')
-- plus the resource as the IdP last wrote it; a SCIM Group is a principal of kind 'group'.

-- Clearance stored from the IdP (SCIM attribute on users; set per group by an admin). NULL: not
-- stated here, and resolveUser falls back to the token's claim (docs/identity.md).
ALTER TABLE principals ADD COLUMN clearance integer CHECK (clearance >= 0);

-- Group memberships get a second owner: rows with connection_id NULL belong to the IdP directory
-- (SCIM). principalSet and readersOf follow every row whoever owns it, so a SCIM group change is in
-- the principal set of the next query; a connector sync only ever replaces its own rows.
ALTER TABLE memberships DROP CONSTRAINT memberships_pkey;
ALTER TABLE memberships ALTER COLUMN connection_id DROP NOT NULL;
ALTER TABLE memberships ADD CONSTRAINT memberships_owner_unique UNIQUE NULLS NOT DISTINCT (group_id, member_id, connection_id);

-- Bearer tokens an IdP presents to /scim/v2, one workspace each. Only the SHA-256 of the token is
-- kept: tokens are 256-bit random, so a fast hash is enough and a stolen table yields no credential.
CREATE TABLE scim_tokens (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  name text NOT NULL,
  token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX scim_tokens_workspace ON scim_tokens (workspace_id);

-- A provisioned User or Group: its SCIM id, the principal it is, and the resource as last written
-- (minus id, meta, members, groups and password, which are ours, computed, or never kept).
CREATE TABLE scim_resources (
  id uuid PRIMARY KEY,
  -- List order: stable while resources are created and deleted between two pages.
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  workspace_id bigint NOT NULL REFERENCES workspaces ON DELETE CASCADE,
  resource_type text NOT NULL CHECK (resource_type IN ('User', 'Group')),
  principal_id integer NOT NULL UNIQUE REFERENCES principals ON DELETE CASCADE,
  -- userName (User) or displayName (Group).
  name text NOT NULL,
  external_id text,
  attributes jsonb NOT NULL CHECK (jsonb_typeof(attributes) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- userName is unique per service provider, case-insensitively (RFC 7643 §4.1.1): the 409 on duplicates.
CREATE UNIQUE INDEX scim_resources_user_name ON scim_resources (workspace_id, lower(name)) WHERE resource_type = 'User';
CREATE INDEX scim_resources_name ON scim_resources (workspace_id, resource_type, lower(name));
CREATE INDEX scim_resources_external_id ON scim_resources (workspace_id, resource_type, external_id);
CREATE INDEX scim_resources_list ON scim_resources (workspace_id, resource_type, seq);

-- Down Migration
DROP TABLE scim_resources, scim_tokens;
DELETE FROM memberships WHERE connection_id IS NULL;
ALTER TABLE memberships DROP CONSTRAINT memberships_owner_unique;
ALTER TABLE memberships ALTER COLUMN connection_id SET NOT NULL;
ALTER TABLE memberships ADD PRIMARY KEY (group_id, member_id, connection_id);
ALTER TABLE principals DROP COLUMN clearance;
