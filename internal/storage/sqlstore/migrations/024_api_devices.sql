-- A device authorization for an API names it and the OpenID Connect
-- scopes asked beside its own, as codes do (023).
ALTER TABLE device_codes ADD COLUMN api_id {{int}} NOT NULL DEFAULT 0;
ALTER TABLE device_codes ADD COLUMN claims {{int}} NOT NULL DEFAULT 0;
