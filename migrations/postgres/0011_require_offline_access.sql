-- The tenant option to issue refresh tokens only for grants that include offline_access.
-- Kept in step with the other migration tree.

ALTER TABLE tenants ADD COLUMN require_offline_access BIGINT NOT NULL DEFAULT 0;
