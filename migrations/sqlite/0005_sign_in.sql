-- Sign-in: pending authorization requests, magic links, authorization codes and the mail
-- outbox. Secrets (link tokens, codes) are stored as keyed digests; mail bodies, which carry
-- links, are sealed until sent. Kept in step with the other migration tree.

ALTER TABLE tenants ADD COLUMN self_signup BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN pkce_required_for_confidential BIGINT NOT NULL DEFAULT 1;

CREATE TABLE authorization_requests (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    -- the checked request as JSON (redirect URI, scope, state, nonce, PKCE challenge, ...)
    request TEXT NOT NULL,
    -- keyed digest of the device cookie of the browser that asked
    device_digest BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    completed_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE login_links (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    link_digest BLOB NOT NULL,
    request_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (tenant_id, link_digest)
);

CREATE TABLE authorization_codes (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    code_digest BLOB NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    resources TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    redeemed_at BIGINT,
    -- the access token issued at redemption, revoked if the code is ever presented again
    access_token_jti TEXT,
    access_token_exp BIGINT,
    PRIMARY KEY (tenant_id, code_digest)
);

CREATE TABLE mail_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    -- subject and bodies as JSON, sealed with KEY_ENCRYPTION_KEY; emptied once sent
    sealed BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at BIGINT,
    failed_at BIGINT,
    last_error TEXT
);

CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
