-- Sealing leaves each row's entry in the partial index of unsealed rows behind as a dead entry,
-- and VACUUM is the only thing that removes those (an index scan for a bitmap never marks them
-- dead; new entries go to the right, never onto the old pages). The sealing task searched that
-- index from its start, so each pass walked every row sealed since the last VACUUM: thousands
-- of entries a second under load, millions between two autovacuums of a large table.
--
-- Each row now records the transaction that wrote it, and the index is ordered by it. Every
-- transaction below a snapshot's xmin has ended, so once a pass has sealed all it found, every
-- row written below the xmin it read first is sealed: the next pass searches from there
-- (`store::audit::SealedBelow`). SQLite drops an index entry with its row, so this migration
-- has no counterpart in the other tree. Rows waiting now take this migration's transaction.

ALTER TABLE audit_events ADD COLUMN written_by xid8;
ALTER TABLE audit_events ALTER COLUMN written_by SET DEFAULT pg_current_xact_id();
UPDATE audit_events SET written_by = pg_current_xact_id() WHERE chain_seq IS NULL;
DROP INDEX audit_events_unsealed;
CREATE INDEX audit_events_unsealed ON audit_events (written_by, tenant_id, id)
    WHERE chain_seq IS NULL;
