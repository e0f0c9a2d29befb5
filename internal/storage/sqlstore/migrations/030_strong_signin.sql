-- Strong sign-in: browser sessions recorded (device, address, last use;
-- ended one by one), a person's second factors (passkeys and an
-- authenticator app) and recovery codes (hashed), a per-user "second
-- factor required", and what a sign-in proved carried from the session
-- through codes and refresh tokens into id_tokens (auth_time, amr, sid).
CREATE TABLE sessions (
    id           {{id}},
    hash         {{bytes}} NOT NULL UNIQUE,
    user_id      {{int}}   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sid          TEXT      NOT NULL UNIQUE,
    auth_time    {{int}}   NOT NULL,
    amr          TEXT      NOT NULL DEFAULT '',
    device       TEXT      NOT NULL DEFAULT '',
    address      TEXT      NOT NULL DEFAULT '',
    created_at   {{int}}   NOT NULL,
    last_seen_at {{int}}   NOT NULL,
    ended_at     {{int}}   NOT NULL DEFAULT 0
);
CREATE INDEX sessions_user ON sessions (user_id, ended_at);

CREATE TABLE factors (
    id            {{id}},
    user_id       {{int}}   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind          TEXT      NOT NULL,
    name          TEXT      NOT NULL DEFAULT '',
    credential_id {{bytes}} NOT NULL UNIQUE,
    data          {{bytes}} NOT NULL,
    step          {{int}}   NOT NULL DEFAULT 0,
    created_at    {{int}}   NOT NULL,
    last_used_at  {{int}}   NOT NULL DEFAULT 0
);
CREATE INDEX factors_user ON factors (user_id);

CREATE TABLE recovery_codes (
    hash    {{bytes}} PRIMARY KEY,
    user_id {{int}}   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    used_at {{int}}   NOT NULL DEFAULT 0
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

ALTER TABLE users ADD COLUMN require_mfa {{int}} NOT NULL DEFAULT 0;

ALTER TABLE codes ADD COLUMN auth_time {{int}} NOT NULL DEFAULT 0;
ALTER TABLE codes ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE codes ADD COLUMN sid TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN sid TEXT NOT NULL DEFAULT '';
