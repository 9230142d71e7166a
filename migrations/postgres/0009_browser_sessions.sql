-- Browser sessions (single sign-on): one row per signed-in browser and tenant, found by the
-- keyed digest of its cookie, ended by logout or an administrator. Kept in step with the other
-- migration tree.

CREATE TABLE browser_sessions (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    sid_digest BYTEA NOT NULL,
    user_id TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT,
    PRIMARY KEY (tenant_id, sid_digest)
);

CREATE INDEX browser_sessions_by_user ON browser_sessions (tenant_id, user_id);
