-- jti values of private_key_jwt client assertions (RFC 7523 §3), kept until the assertion
-- expires so that each one is accepted once. Kept in step with the other migration tree.

CREATE TABLE client_assertion_jtis (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id, jti)
);
