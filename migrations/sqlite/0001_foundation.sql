-- Foundation: instance secrets, tenants, clients, users and the audit trail.
-- Kept in step with migrations/postgres/0001_foundation.sql. Times are Unix seconds
-- (audit: milliseconds). Every tenant-owned row has tenant_id first in its key.

CREATE TABLE instance_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    -- sealed with KEY_ENCRYPTION_KEY, or a keyed digest; never a plain secret
    value BLOB NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    allowed_email_domains TEXT NOT NULL DEFAULT '[]',
    admin_secret_digest BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE clients (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    client_id TEXT NOT NULL,
    secret_digest BLOB,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
);

CREATE TABLE users (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    UNIQUE (tenant_id, email)
);

-- No foreign key: the trail also records failures against tenants that do not exist.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    occurred_at_ms BIGINT NOT NULL,
    event TEXT NOT NULL,
    client_id TEXT,
    user_id TEXT,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    details TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_events_by_tenant_time ON audit_events (tenant_id, occurred_at_ms, id);
