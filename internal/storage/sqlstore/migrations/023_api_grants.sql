-- Grants for an API: the code and refresh tokens name it (0: the built-in
-- API) and carry the OpenID Connect scopes asked beside its own (claims,
-- the built-in mask's openid, profile, email and offline bits); consent is
-- remembered per (user, app, API).
ALTER TABLE codes ADD COLUMN api_id {{int}} NOT NULL DEFAULT 0;
ALTER TABLE codes ADD COLUMN claims {{int}} NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN api_id {{int}} NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN claims {{int}} NOT NULL DEFAULT 0;
CREATE INDEX refresh_tokens_api ON refresh_tokens (api_id) WHERE api_id <> 0;

CREATE TABLE api_consents (
    user_id    {{int}} NOT NULL REFERENCES users (id),
    app_id     {{int}} NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    api_id     {{int}} NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    scope      {{int}} NOT NULL,
    created_at {{int}} NOT NULL,
    updated_at {{int}} NOT NULL,
    PRIMARY KEY (user_id, app_id, api_id)
);
CREATE INDEX api_consents_api ON api_consents (api_id);
CREATE INDEX api_consents_app ON api_consents (app_id);
