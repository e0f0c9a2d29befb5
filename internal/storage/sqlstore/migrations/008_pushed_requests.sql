-- Pushed authorization requests (RFC 9126): the parameters an app pushed,
-- stored under the hash of their request_uri, one use, a minute.
CREATE TABLE pushed_requests (
    hash       {{bytes}} PRIMARY KEY,
    app_id     {{int}} NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    params     TEXT    NOT NULL,
    expires_at {{int}} NOT NULL,
    used_at    {{int}} NOT NULL DEFAULT 0
){{without_rowid}};
CREATE INDEX pushed_requests_expires ON pushed_requests (expires_at);
