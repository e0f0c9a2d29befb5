-- The security profile an app is held to: '' (none) or 'fapi2' (FAPI 2.0:
-- PAR, PKCE S256, private_key_jwt, DPoP, 60-second codes).
ALTER TABLE apps ADD COLUMN profile TEXT NOT NULL DEFAULT '';
