-- Revoked tokens are deleted after a retention period: found by this index,
-- which holds revoked tokens only (inserts do not touch it).
CREATE INDEX tokens_revoked ON tokens (revoked_at) WHERE revoked_at <> 0;
