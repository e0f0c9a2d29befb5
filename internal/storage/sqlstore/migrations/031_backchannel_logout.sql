-- Back-channel logout (OpenID Connect Back-Channel Logout 1.0): where an
-- app hears of a session's end, which apps each session signed in to, and
-- one delivery queue for the Callback API's events and the logout tokens,
-- with the same retries: a delivery goes to a community's server
-- (server_id) or to an app (app_id), in order for each.
ALTER TABLE apps ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';

CREATE TABLE session_apps (
    sid    TEXT    NOT NULL,
    app_id {{int}} NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    PRIMARY KEY (sid, app_id)
);

CREATE TABLE deliveries (
    id           {{id}},
    server_id    {{int}} REFERENCES callback_servers (id) ON DELETE CASCADE,
    app_id       {{int}} REFERENCES apps (id) ON DELETE CASCADE,
    community_id {{int}} NOT NULL DEFAULT 0,
    seq          {{int}} NOT NULL DEFAULT 0,
    type         TEXT    NOT NULL,
    url          TEXT    NOT NULL DEFAULT '',
    payload      TEXT    NOT NULL DEFAULT '',
    status       TEXT    NOT NULL,
    attempts     {{int}} NOT NULL DEFAULT 0,
    next_at      {{int}} NOT NULL,
    last_error   TEXT    NOT NULL DEFAULT '',
    updated_at   {{int}} NOT NULL
);
INSERT INTO deliveries (server_id, community_id, seq, type, status, attempts, next_at, last_error, updated_at)
    SELECT server_id, community_id, seq, type, status, attempts, next_at, last_error, updated_at FROM callback_deliveries ORDER BY id;
DROP TABLE callback_deliveries;
CREATE INDEX deliveries_server_due ON deliveries (status, server_id, id);
CREATE INDEX deliveries_app_due ON deliveries (status, app_id, id);
CREATE INDEX deliveries_community ON deliveries (community_id, id);
