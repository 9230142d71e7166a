-- Refresh tokens (issue 5): each authorization grant starts a family; every use rotates the
-- token; a rotated token presented again outside the grace window revokes the family and the
-- access tokens it produced. Kept in step with the other migration tree.

ALTER TABLE tenants ADD COLUMN refresh_idle_secs BIGINT NOT NULL DEFAULT 2592000;
ALTER TABLE tenants ADD COLUMN refresh_absolute_secs BIGINT NOT NULL DEFAULT 7776000;
ALTER TABLE tenants ADD COLUMN refresh_grace_secs BIGINT NOT NULL DEFAULT 5;

CREATE TABLE refresh_families (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    resources TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_reason TEXT,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX refresh_families_by_user ON refresh_families (tenant_id, user_id);

CREATE TABLE refresh_tokens (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    token_digest BYTEA NOT NULL,
    family_id TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT,
    -- the token response its rotation produced, sealed, returned again to a retry within the
    -- grace window
    rotated_response BYTEA,
    PRIMARY KEY (tenant_id, token_digest)
);

-- Access tokens issued within a family, revoked with it.
CREATE TABLE family_access_tokens (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    family_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, family_id, jti)
);
