-- Clients known by a client ID metadata document (their client_id is the
-- document's https URL): the app that stands for each, and until when the
-- document read last is fresh.
CREATE TABLE client_documents (
    url        TEXT    PRIMARY KEY,
    app_id     {{int}} NOT NULL UNIQUE REFERENCES apps (id) ON DELETE CASCADE,
    expires_at {{int}} NOT NULL
);
