-- The address a sign-in link was asked from, for the per-IP send limit. Kept in step with the
-- other migration tree.

ALTER TABLE login_links ADD COLUMN requested_ip TEXT;
CREATE INDEX login_links_by_ip ON login_links (tenant_id, requested_ip, created_at);
