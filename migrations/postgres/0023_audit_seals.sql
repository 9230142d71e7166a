-- Sealing a row was an update of it, and on PostgreSQL no update that sets `chain_seq` can be
-- heap-only while an index covers it: every audited request cost a second heap tuple, three
-- more index entries and a dead row for VACUUM, thousands a second under load. A seal now is a
-- row of its own in `audit_seals`, inserted once and never updated, and `audit_events` is
-- insert-only. `audit_rows` shows each row with its seal, if it has one, under the names
-- `audit_events` had; the other tree, whose writer seals most rows as it writes them, keeps the
-- seal in the row and has the same view over its one table.
--
-- The join carries the tenant so that a query for one tenant's chain reaches `audit_seals`
-- through its key. Without `chain_seq` the index of unsealed rows cannot be partial: it holds
-- every row, in the order of the transactions that wrote them (see 0022).

CREATE TABLE audit_seals (
    tenant_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    event_id BIGINT NOT NULL UNIQUE,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

INSERT INTO audit_seals (tenant_id, seq, event_id, prev, hash)
    SELECT tenant_id, chain_seq, id, chain_prev, chain_hash FROM audit_events
    WHERE chain_seq IS NOT NULL;

-- Where the sealing task's search starts (`store::audit::SealedBelow`), kept across restarts:
-- every row written below it is sealed. From here on, the oldest row still unsealed, or the
-- oldest transaction still open, whichever is older.
CREATE TABLE audit_sealed_below (
    xid BIGINT NOT NULL
);
INSERT INTO audit_sealed_below (xid)
    SELECT LEAST(
        (SELECT MIN(written_by)::text::bigint FROM audit_events WHERE chain_seq IS NULL),
        pg_snapshot_xmin(pg_current_snapshot())::text::bigint);

DROP INDEX audit_events_unsealed;
DROP INDEX audit_events_by_chain;
ALTER TABLE audit_events DROP COLUMN chain_seq, DROP COLUMN chain_prev, DROP COLUMN chain_hash;
CREATE INDEX audit_events_by_writer ON audit_events (written_by, tenant_id, id);

CREATE VIEW audit_rows AS
    SELECT e.id, e.tenant_id, e.occurred_at_ms, e.event, e.client_id, e.user_id, e.ip,
           e.user_agent, e.request_id, e.details, e.written_by,
           s.seq AS chain_seq, s.prev AS chain_prev, s.hash AS chain_hash
    FROM audit_events e
    LEFT JOIN audit_seals s ON s.tenant_id = e.tenant_id AND s.event_id = e.id;
