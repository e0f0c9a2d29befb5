-- The token an exchanged token (RFC 8693) came from, so that revoking a
-- token revokes every token exchanged from it, at any depth.
ALTER TABLE tokens ADD COLUMN parent_hash {{bytes}};
CREATE INDEX tokens_parent ON tokens (parent_hash) WHERE parent_hash IS NOT NULL;
