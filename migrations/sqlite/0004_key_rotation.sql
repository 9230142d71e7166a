-- Scheduled key rotation per tenant: how long a key signs before the next one takes over
-- (seconds; 0 turns rotation off). Kept in step with the other migration tree.

ALTER TABLE tenants ADD COLUMN key_rotation_secs BIGINT NOT NULL DEFAULT 7776000;
