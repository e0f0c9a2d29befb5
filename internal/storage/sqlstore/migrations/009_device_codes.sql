-- Device authorization (RFC 8628): the device code (hashed), the user code
-- a person types (hashed, unique while it lives), and what became of it.
CREATE TABLE device_codes (
    hash         {{bytes}} PRIMARY KEY,
    user_code    {{bytes}} NOT NULL UNIQUE,
    app_id       {{int}} NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scope        {{int}} NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending', -- pending, approved, denied, used
    user_id      {{int}} NOT NULL DEFAULT 0,
    interval_s   {{int}} NOT NULL,
    last_poll_at {{int}} NOT NULL DEFAULT 0,
    issued_at    {{int}} NOT NULL,
    expires_at   {{int}} NOT NULL
){{without_rowid}};
CREATE INDEX device_codes_expires ON device_codes (expires_at);
