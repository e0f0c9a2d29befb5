-- Limits that hold across nodes. Each serving node writes here every
-- second, so that each knows how many share the API's per-token and per-app
-- limits; throttles (logins, sign-ups, device codes, messages from pages)
-- count their attempts here, shared by every node, keyed by the SHA-256 of
-- what they count (an address, a login): nothing readable.
CREATE TABLE nodes (
    id      TEXT    PRIMARY KEY,
    seen_at {{int}} NOT NULL
);
CREATE TABLE throttles (
    key        {{bytes}} PRIMARY KEY,
    started_at {{int}}   NOT NULL, -- Unix milliseconds: the window's start
    count      {{int}}   NOT NULL
){{without_rowid}};
CREATE INDEX throttles_started ON throttles (started_at);
