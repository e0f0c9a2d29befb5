-- The (app, user) index ends with the issue time, so that the tokens an app
-- is issued one after another go to the same index page (its last) instead
-- of a random one each, ordered by hash: fewer pages written per commit.
-- Lookups by app and user use it as before; the newest comes first for
-- free.
DROP INDEX tokens_app_user;
CREATE INDEX tokens_app_user ON tokens (app_id, user_id, issued_at);
