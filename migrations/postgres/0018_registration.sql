-- Dynamic client registration (RFC 7591/7592): the tenant's policy (open, token or closed) and
-- its initial access token's digest, and each registered client's registration access token
-- digest. Kept in step with the other migration tree.

ALTER TABLE tenants ADD COLUMN registration_policy TEXT NOT NULL DEFAULT 'open';
ALTER TABLE tenants ADD COLUMN registration_token_digest BYTEA;
ALTER TABLE clients ADD COLUMN registration_token_digest BYTEA;
