-- Apps registered by their clients (RFC 7591): an app of the user with id
-- 0, "nobody", who has no password and whom no lookup by id or login finds;
-- the registration's metadata and its registration access token (hashed);
-- and the initial access tokens an operator hands out for registering.
INSERT INTO users (id, login, password_hash, created_at) VALUES (0, '', '', 0);

CREATE TABLE registrations (
    app_id       {{int}}   PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    access_hash  {{bytes}} NOT NULL UNIQUE,
    metadata     TEXT      NOT NULL,
    address      TEXT      NOT NULL DEFAULT '',
    created_at   {{int}}   NOT NULL
);

CREATE TABLE registration_tokens (
    id         {{id}},
    name       TEXT      NOT NULL,
    hash       {{bytes}} NOT NULL UNIQUE,
    max_uses   {{int}}   NOT NULL DEFAULT 0,
    uses       {{int}}   NOT NULL DEFAULT 0,
    expires_at {{int}}   NOT NULL DEFAULT 0,
    revoked_at {{int}}   NOT NULL DEFAULT 0,
    created_at {{int}}   NOT NULL
);
