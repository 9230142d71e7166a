-- Audit rows are read through `audit_rows`: each row with its seal, if it has one. Here the
-- seal is in the row (the writer seals most rows as it writes them); the other tree keeps
-- seals in a table of their own, inserted and never updated, and has the same view over both.

CREATE VIEW audit_rows AS
    SELECT id, tenant_id, occurred_at_ms, event, client_id, user_id, ip, user_agent,
           request_id, details, chain_seq, chain_prev, chain_hash
    FROM audit_events;
