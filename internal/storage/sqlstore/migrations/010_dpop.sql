-- DPoP (RFC 9449): the thumbprint of the key a token is bound to ('' for
-- bearer tokens), and the proofs' jtis seen, to refuse a replay on any node.
ALTER TABLE tokens ADD COLUMN jkt TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN jkt TEXT NOT NULL DEFAULT '';
CREATE TABLE dpop_proofs (
    hash       {{bytes}} PRIMARY KEY,
    expires_at {{int}} NOT NULL
){{without_rowid}};
CREATE INDEX dpop_proofs_expires ON dpop_proofs (expires_at);
