-- Refresh tokens (stored hashed, like every token). A family is one grant:
-- the hash of the authorization code it began with, which the grant's
-- access tokens carry too, so that reuse of a spent refresh token revokes
-- the whole grant at once.
CREATE TABLE refresh_tokens (
    hash       {{bytes}} PRIMARY KEY,
    family     {{bytes}} NOT NULL,
    app_id     {{int}} NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id    {{int}} NOT NULL REFERENCES users (id),
    scope      {{int}} NOT NULL,
    auth_time  {{int}} NOT NULL DEFAULT 0,
    nonce      TEXT    NOT NULL DEFAULT '',
    issued_at  {{int}} NOT NULL,
    expires_at {{int}} NOT NULL,
    used_at    {{int}} NOT NULL DEFAULT 0,
    revoked_at {{int}} NOT NULL DEFAULT 0
){{without_rowid}};
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_app_user ON refresh_tokens (app_id, user_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
