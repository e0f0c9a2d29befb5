-- Bots' other events (vk-wire.md §7): who joined a community, and whether a
-- user lets the community write to them (no row: allowed).
CREATE TABLE community_members (
    community_id {{int}} NOT NULL,
    user_id      {{int}} NOT NULL,
    joined_at    {{int}} NOT NULL,
    PRIMARY KEY (community_id, user_id)
){{without_rowid}};
CREATE TABLE community_message_perms (
    community_id {{int}} NOT NULL,
    user_id      {{int}} NOT NULL,
    allowed      {{int}} NOT NULL,
    at           {{int}} NOT NULL,
    PRIMARY KEY (community_id, user_id)
){{without_rowid}};
