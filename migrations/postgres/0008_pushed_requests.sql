-- Pushed authorization requests (RFC 9126): the parameters a client posted, kept for a minute
-- for one use at the authorization endpoint, and the tenant option to require them. Kept in
-- step with the other migration tree.

ALTER TABLE tenants ADD COLUMN require_par BIGINT NOT NULL DEFAULT 0;

CREATE TABLE pushed_requests (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    -- the form-encoded parameters, as posted
    params TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
