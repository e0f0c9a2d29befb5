-- Federation: upstream identity providers (an OpenID Provider, or an LDAP
-- directory) people sign in through, their secret (a client secret, a bind
-- password) sealed under the server secret, and the links of a local user
-- to an upstream person (upstream, subject).
CREATE TABLE upstreams (
    id            {{id}},
    name          TEXT      NOT NULL UNIQUE,
    kind          TEXT      NOT NULL,
    config        TEXT      NOT NULL,
    secret_sealed {{bytes}} NOT NULL,
    created_at    {{int}}   NOT NULL
);

CREATE TABLE user_links (
    upstream_id {{int}} NOT NULL REFERENCES upstreams (id) ON DELETE CASCADE,
    subject     TEXT    NOT NULL,
    user_id     {{int}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  {{int}} NOT NULL,
    PRIMARY KEY (upstream_id, subject)
);
CREATE INDEX user_links_user ON user_links (user_id);
