-- The Callback API (vk-wire.md §7): a community's servers (their secret
-- sealed under the server secret: it is sent with every event), and the
-- delivery queue, kept in storage so that a restart loses nothing.
CREATE TABLE callback_servers (
    id            {{id}},
    community_id  {{int}} NOT NULL,
    url           TEXT    NOT NULL,
    title         TEXT    NOT NULL,
    secret_sealed {{bytes}},
    creator_id    {{int}} NOT NULL,
    status        TEXT    NOT NULL,
    api_version   TEXT    NOT NULL DEFAULT '5.199',
    events        TEXT    NOT NULL DEFAULT '[]',
    created_at    {{int}} NOT NULL
);
CREATE INDEX callback_servers_community ON callback_servers (community_id);
CREATE TABLE callback_deliveries (
    id           {{id}},
    server_id    {{int}} NOT NULL REFERENCES callback_servers (id) ON DELETE CASCADE,
    community_id {{int}} NOT NULL,
    seq          {{int}} NOT NULL,
    type         TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    attempts     {{int}} NOT NULL DEFAULT 0,
    next_at      {{int}} NOT NULL,
    last_error   TEXT    NOT NULL DEFAULT '',
    updated_at   {{int}} NOT NULL
);
CREATE INDEX callback_deliveries_due ON callback_deliveries (status, server_id, id);
