-- PostgreSQL checks a foreign key by share-locking the parent row: every concurrent code
-- exchange (three such inserts) and refresh rotation (two) of one tenant locked the same
-- `tenants` row, and shared locks held by several live transactions go through a multixact.
-- Tenants are never deleted and every write names the tenant its request was routed to, so
-- the per-grant rows written at token-endpoint rate carry no check against `tenants`. Rows
-- written at admin or human rate keep theirs. SQLite keeps all of its keys: its check is an
-- index lookup that takes no lock, so this migration has no counterpart in the other tree.

ALTER TABLE refresh_families DROP CONSTRAINT refresh_families_tenant_id_fkey;
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_tenant_id_fkey;
ALTER TABLE family_access_tokens DROP CONSTRAINT family_access_tokens_tenant_id_fkey;
ALTER TABLE authorization_codes DROP CONSTRAINT authorization_codes_tenant_id_fkey;
ALTER TABLE revoked_tokens DROP CONSTRAINT revoked_tokens_tenant_id_fkey;
ALTER TABLE client_assertion_jtis DROP CONSTRAINT client_assertion_jtis_tenant_id_fkey;
ALTER TABLE dpop_jtis DROP CONSTRAINT dpop_jtis_tenant_id_fkey;
