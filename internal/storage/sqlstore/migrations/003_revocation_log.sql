-- Every revocation, in order, appended in the transaction that revokes: the
-- processes sharing one SQLite file (a running server and the CLI) follow it,
-- so that a revocation made anywhere reaches every token cache. Kept for an
-- hour (Cleanup).
CREATE TABLE revocations (
    seq  {{id}},
    hash {{bytes}} NOT NULL,
    at   {{int}} NOT NULL
);
CREATE INDEX revocations_at ON revocations (at);
