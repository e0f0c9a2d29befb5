-- Latchkey schema, written once for every backend; sqlstore.Dialect
-- translates the names in double braces. Times are Unix seconds, 0 = never.
CREATE TABLE users (
    id            {{id}},
    login         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    first_name    TEXT    NOT NULL DEFAULT '',
    last_name     TEXT    NOT NULL DEFAULT '',
    email         TEXT    NOT NULL DEFAULT '',
    created_at    {{int}} NOT NULL,
    -- sessions issued before this (Unix milliseconds) are logged out
    sessions_after {{int}} NOT NULL DEFAULT 0
);

CREATE TABLE apps (
    id                    {{id}},
    owner_id              {{int}} NOT NULL REFERENCES users (id),
    title                 TEXT    NOT NULL,
    description           TEXT    NOT NULL DEFAULT '',
    type                  TEXT    NOT NULL,
    redirect_uris         TEXT    NOT NULL DEFAULT '[]',
    iframe_url            TEXT    NOT NULL DEFAULT '',
    iframe_scope          {{int}} NOT NULL DEFAULT 0,
    secret_hash           {{bytes}}    NOT NULL,
    secret_sealed         {{bytes}}    NOT NULL,
    secret_created_at     {{int}} NOT NULL,
    old_secret_hash       {{bytes}},
    old_secret_sealed     {{bytes}},
    old_secret_created_at {{int}} NOT NULL DEFAULT 0,
    old_secret_expires_at {{int}} NOT NULL DEFAULT 0,
    service_token_sealed  {{bytes}},
    client_credentials    {{bool}} NOT NULL DEFAULT {{false}},
    created_at            {{int}} NOT NULL
);
CREATE INDEX apps_owner ON apps (owner_id);

CREATE TABLE communities (
    id         {{id}},
    name       TEXT    NOT NULL,
    created_at {{int}} NOT NULL
);

CREATE TABLE community_admins (
    community_id {{int}} NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    user_id      {{int}} NOT NULL REFERENCES users (id),
    added_at     {{int}} NOT NULL,
    PRIMARY KEY (community_id, user_id)
);
CREATE INDEX community_admins_user ON community_admins (user_id);

CREATE TABLE consents (
    user_id    {{int}} NOT NULL REFERENCES users (id),
    app_id     {{int}} NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scope      {{int}} NOT NULL,
    created_at {{int}} NOT NULL,
    updated_at {{int}} NOT NULL,
    PRIMARY KEY (user_id, app_id)
);
CREATE INDEX consents_app ON consents (app_id);

CREATE TABLE codes (
    hash                  {{bytes}}    PRIMARY KEY,
    app_id                {{int}} NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id               {{int}} NOT NULL REFERENCES users (id),
    community_ids         TEXT    NOT NULL DEFAULT '[]',
    scope                 {{int}} NOT NULL,
    redirect_uri          TEXT    NOT NULL,
    code_challenge        TEXT    NOT NULL DEFAULT '',
    code_challenge_method TEXT    NOT NULL DEFAULT '',
    ip                    TEXT    NOT NULL DEFAULT '',
    issued_at             {{int}} NOT NULL,
    expires_at            {{int}} NOT NULL,
    used_at               {{int}} NOT NULL DEFAULT 0
){{without_rowid}};
CREATE INDEX codes_expires ON codes (expires_at);

CREATE TABLE tokens (
    hash         {{bytes}}    PRIMARY KEY,
    kind         TEXT    NOT NULL,
    app_id       {{int}} REFERENCES apps (id) ON DELETE CASCADE, -- NULL: created on a community page
    user_id      {{int}} NOT NULL DEFAULT 0,
    community_id {{int}} NOT NULL DEFAULT 0,
    scope        {{int}} NOT NULL,
    issued_at    {{int}} NOT NULL,
    expires_at   {{int}} NOT NULL,
    ip           TEXT    NOT NULL DEFAULT '',
    flow         TEXT    NOT NULL,
    code_hash    {{bytes}},
    secret_hash  {{bytes}}, -- the client secret a client-credentials token was minted with; looked up with app_id, whose index serves (no index of its own: it would slow every insert)
    revoked_at   {{int}} NOT NULL DEFAULT 0,
    revoke_reason TEXT   NOT NULL DEFAULT '',
    last_used_at {{int}} NOT NULL DEFAULT 0
){{without_rowid}};
CREATE INDEX tokens_app_user ON tokens (app_id, user_id);
CREATE INDEX tokens_community ON tokens (community_id) WHERE community_id <> 0;
CREATE INDEX tokens_code ON tokens (code_hash) WHERE code_hash IS NOT NULL;
CREATE INDEX tokens_expires ON tokens (expires_at) WHERE expires_at <> 0;

CREATE TABLE notifications (
    id         {{id}},
    app_id     {{int}} NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id    {{int}} NOT NULL REFERENCES users (id),
    message    TEXT    NOT NULL,
    created_at {{int}} NOT NULL,
    read_at    {{int}} NOT NULL DEFAULT 0
);
CREATE INDEX notifications_user ON notifications (user_id);

CREATE TABLE app_events (
    id          {{id}},
    app_id      {{int}} NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id     {{int}} NOT NULL REFERENCES users (id),
    activity_id {{int}} NOT NULL,
    value       {{int}} NOT NULL,
    created_at  {{int}} NOT NULL
);
CREATE INDEX app_events_app ON app_events (app_id);

CREATE TABLE messages (
    id                {{id}},
    app_id            {{int}} NOT NULL DEFAULT 0,
    from_user_id      {{int}} NOT NULL DEFAULT 0,
    from_community_id {{int}} NOT NULL DEFAULT 0,
    peer_id           {{int}} NOT NULL,
    text              TEXT    NOT NULL,
    random_id         {{int}} NOT NULL DEFAULT 0,
    created_at        {{int}} NOT NULL,
    read_at           {{int}} NOT NULL DEFAULT 0
);
CREATE INDEX messages_peer ON messages (peer_id);
CREATE UNIQUE INDEX messages_dedupe ON messages (from_user_id, from_community_id, random_id) WHERE random_id <> 0;

-- The audit log outlives what it speaks of: no foreign keys.
CREATE TABLE audit (
    id            {{id}},
    at            {{int}} NOT NULL,
    actor_user_id {{int}} NOT NULL DEFAULT 0,
    app_id        {{int}} NOT NULL DEFAULT 0,
    community_id  {{int}} NOT NULL DEFAULT 0,
    action        TEXT    NOT NULL,
    ip            TEXT    NOT NULL DEFAULT '',
    detail        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_app ON audit (app_id) WHERE app_id <> 0;
CREATE INDEX audit_community ON audit (community_id) WHERE community_id <> 0;
