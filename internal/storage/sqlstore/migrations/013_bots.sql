-- Bots (vk-wire.md §7): each community's events, numbered by a sequence
-- that never goes back (its counter outlives the events, which are kept a
-- day), and its Bots Long Poll settings.
CREATE TABLE community_event_seq (
    community_id {{int}} PRIMARY KEY,
    last_seq     {{int}} NOT NULL
);
CREATE TABLE community_events (
    community_id {{int}} NOT NULL,
    seq          {{int}} NOT NULL,
    type         TEXT    NOT NULL,
    object       TEXT    NOT NULL,
    created_at   {{int}} NOT NULL,
    PRIMARY KEY (community_id, seq)
){{without_rowid}};
CREATE INDEX community_events_created ON community_events (created_at);
CREATE TABLE longpoll_settings (
    community_id {{int}} PRIMARY KEY,
    enabled      {{int}} NOT NULL DEFAULT 0,
    api_version  TEXT    NOT NULL DEFAULT '5.199',
    events       TEXT    NOT NULL DEFAULT '[]'
);
