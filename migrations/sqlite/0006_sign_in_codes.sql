-- One-time codes in sign-in: the code shown when a link is opened in another browser (typed
-- into the browser that asked), and the tenant option to require the code sent in the email
-- after the link. Five wrong codes void the link. Kept in step with the other migration tree.

ALTER TABLE tenants ADD COLUMN require_email_code BIGINT NOT NULL DEFAULT 0;
ALTER TABLE login_links ADD COLUMN handoff_digest BLOB;
ALTER TABLE login_links ADD COLUMN handoff_expires_at BIGINT;
ALTER TABLE login_links ADD COLUMN email_code_digest BLOB;
ALTER TABLE login_links ADD COLUMN code_attempts BIGINT NOT NULL DEFAULT 0;
