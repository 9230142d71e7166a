-- Audit rows are chained per tenant: the sealing task gives each row the next `chain_seq`, the
-- previous row's hash and its own (a keyed digest over both and the row's content), so an
-- altered, inserted or removed row shows. `audit_chains` holds each tenant's head and, once
-- retention has purged old rows, the anchor the remaining chain starts from. Kept in step with
-- the other migration tree.

ALTER TABLE audit_events ADD COLUMN chain_seq BIGINT;
ALTER TABLE audit_events ADD COLUMN chain_prev TEXT;
ALTER TABLE audit_events ADD COLUMN chain_hash TEXT;
CREATE UNIQUE INDEX audit_events_by_chain ON audit_events (tenant_id, chain_seq);
CREATE INDEX audit_events_unsealed ON audit_events (id) WHERE chain_seq IS NULL;

CREATE TABLE audit_chains (
    tenant_id TEXT PRIMARY KEY,
    head_seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    anchor_seq BIGINT NOT NULL,
    anchor_hash TEXT NOT NULL
);

-- Days audit rows are kept; 0 keeps them forever.
ALTER TABLE tenants ADD COLUMN audit_retention_days BIGINT NOT NULL DEFAULT 365;
