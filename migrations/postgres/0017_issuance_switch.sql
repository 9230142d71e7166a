-- A per-tenant switch that stops token issuance (an abuse control): while paused, the token and
-- authorization endpoints refuse to issue anything. Kept in step with the other migration tree.

ALTER TABLE tenants ADD COLUMN issuance_paused BIGINT NOT NULL DEFAULT 0;
