-- The browser's session record (tower-sessions), when sessions are kept in the database rather
-- than Redis: found by the keyed digest of the session cookie, never by the cookie itself. It
-- names the per-tenant sign-ins (`browser_sessions`) the browser holds. Kept in step with the
-- other migration tree.

CREATE TABLE web_sessions (
    id_digest BYTEA PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
