-- DPoP (RFC 9449): proof jtis seen recently (each proof is accepted once), and the key a
-- public client's refresh family is bound to. Kept in step with the other migration tree.

CREATE TABLE dpop_jtis (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    jkt TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, jkt, jti)
);

ALTER TABLE refresh_families ADD COLUMN dpop_jkt TEXT;
