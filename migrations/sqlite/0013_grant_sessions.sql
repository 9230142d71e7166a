-- The browser session a grant came from, carried from the authorization request through the
-- code to the refresh family it starts. Kept in step with the other migration tree.

ALTER TABLE authorization_requests ADD COLUMN session_digest BLOB;
ALTER TABLE authorization_codes ADD COLUMN session_digest BLOB;
ALTER TABLE refresh_families ADD COLUMN session_digest BLOB;
