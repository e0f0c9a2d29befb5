-- APIs: resource servers a team registers, which apps get tokens for (RFC
-- 8707 resource indicators). Scopes, route rules: JSON. The introspection
-- secret is kept as its hash only.
CREATE TABLE apis (
    id            {{id}},
    identifier    TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    owner_id      {{int}} NOT NULL REFERENCES users (id),
    scopes        TEXT    NOT NULL DEFAULT '[]',
    token_format  TEXT    NOT NULL,
    token_ttl     {{int}} NOT NULL,
    rate          {{int}} NOT NULL DEFAULT 0,
    upstream      TEXT    NOT NULL DEFAULT '',
    slug          TEXT    NOT NULL DEFAULT '',
    routes        TEXT    NOT NULL DEFAULT '[]',
    secret_hash   {{bytes}} NOT NULL,
    created_at    {{int}} NOT NULL
);
CREATE INDEX apis_owner ON apis (owner_id);
CREATE UNIQUE INDEX apis_slug ON apis (slug) WHERE slug <> '';

-- A token for an API carries its id (0: the built-in API).
ALTER TABLE tokens ADD COLUMN api_id {{int}} NOT NULL DEFAULT 0;
-- Deleting an API revokes its tokens: found without reading the others.
CREATE INDEX tokens_api ON tokens (api_id) WHERE api_id <> 0;
