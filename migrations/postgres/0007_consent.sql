-- Consent: clients an administrator registers are first-party and skip it; others ask the
-- person once per client and scope set. A request remembers who signed in while consent is
-- pending. Kept in step with the other migration tree.

ALTER TABLE clients ADD COLUMN first_party BIGINT NOT NULL DEFAULT 1;
ALTER TABLE authorization_requests ADD COLUMN user_id TEXT;
ALTER TABLE authorization_requests ADD COLUMN auth_time BIGINT;

CREATE TABLE consents (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    -- JSON arrays of what was granted
    scopes TEXT NOT NULL,
    resources TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, client_id)
);
