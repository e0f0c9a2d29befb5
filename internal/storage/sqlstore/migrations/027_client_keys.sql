-- How an app authenticates at the token endpoints
-- (token_endpoint_auth_method: '' for the default of its type), and the
-- public keys of private_key_jwt (RFC 7523): a JWK Set, or where one is.
ALTER TABLE apps ADD COLUMN auth_method TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN jwks TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN jwks_uri TEXT NOT NULL DEFAULT '';
