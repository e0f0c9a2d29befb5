-- OpenID Connect: the nonce an authorization request sent, for its
-- id_token; and the signing keys, sealed under the server secret. The
-- current key is the newest one not retired; retired keys leave the JWKS.
ALTER TABLE codes ADD COLUMN nonce TEXT NOT NULL DEFAULT '';
CREATE TABLE signing_keys (
    kid        TEXT    PRIMARY KEY,
    alg        TEXT    NOT NULL,
    sealed     {{bytes}} NOT NULL,
    created_at {{int}} NOT NULL, -- Unix milliseconds: the newest key is the current one
    retired_at {{int}} NOT NULL DEFAULT 0
);
