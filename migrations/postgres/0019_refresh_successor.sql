-- A rotation records its successor's digest on the rotated token and keeps the response it
-- produced with the successor, which is appended: the rotated row no longer grows in place by
-- a whole sealed response. A retry inside the grace window finds the response through the
-- successor, which also tells whether that successor is still the newest (not rotated itself)
-- without scanning the family. Kept in step with the other migration tree.

ALTER TABLE refresh_tokens ADD COLUMN successor_digest BYTEA;
-- the token response that issued this token, sealed, returned again to a retry of its
-- predecessor within the grace window
ALTER TABLE refresh_tokens ADD COLUMN issued_response BYTEA;

-- Tokens rotated within the longest grace window (60 s) before the upgrade keep their retry.
UPDATE refresh_tokens AS s SET issued_response = p.rotated_response
    FROM refresh_tokens AS p
    WHERE p.rotated_at >= CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) - 60
      AND p.tenant_id = s.tenant_id AND p.family_id = s.family_id
      AND s.generation = p.generation + 1;
UPDATE refresh_tokens AS p SET successor_digest = s.token_digest
    FROM refresh_tokens AS s
    WHERE p.rotated_at >= CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) - 60
      AND p.tenant_id = s.tenant_id AND p.family_id = s.family_id
      AND s.generation = p.generation + 1;

ALTER TABLE refresh_tokens DROP COLUMN rotated_response;
