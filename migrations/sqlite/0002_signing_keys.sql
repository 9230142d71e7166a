-- Signing keys per tenant (SPEC key states), revoked access tokens, and the per-tenant
-- keys_version that serializes key changes and tells replicas their key cache is stale.
-- Kept in step with the other migration tree.

ALTER TABLE tenants ADD COLUMN keys_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN access_token_ttl BIGINT NOT NULL DEFAULT 600;
ALTER TABLE tenants ADD COLUMN id_token_ttl BIGINT NOT NULL DEFAULT 600;

CREATE TABLE signing_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    kid TEXT NOT NULL,
    alg TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256', 'EdDSA')),
    state TEXT NOT NULL CHECK (state IN ('staged', 'active', 'retired', 'revoked')),
    public_jwk TEXT NOT NULL,
    -- PKCS#8 DER sealed with KEY_ENCRYPTION_KEY; associated data binds it to tenant and kid
    private_key BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    activated_at BIGINT,
    retired_at BIGINT,
    revoked_at BIGINT,
    PRIMARY KEY (tenant_id, kid)
);

-- The database itself allows at most one active key per tenant.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id) WHERE state = 'active';

CREATE TABLE revoked_tokens (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    jti TEXT NOT NULL,
    -- when the token expires anyway; the row can be purged after it
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, jti)
);
