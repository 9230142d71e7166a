-- The chain index holds sealed rows only: an unsealed row's (tenant, NULL) entry was written
-- with the row and moved by sealing, two index writes per audit row on the token endpoint's
-- path. Queries by `chain_seq` compare it, which implies NOT NULL, so they still use it; the
-- sealing task finds a tenant's unsealed rows, in order, through `audit_events_unsealed`, now
-- keyed by tenant. Kept in step with the other migration tree.

DROP INDEX audit_events_by_chain;
CREATE UNIQUE INDEX audit_events_by_chain ON audit_events (tenant_id, chain_seq)
    WHERE chain_seq IS NOT NULL;
DROP INDEX audit_events_unsealed;
CREATE INDEX audit_events_unsealed ON audit_events (tenant_id, id) WHERE chain_seq IS NULL;
