-- A token handed out again (an iframe launch reuses the viewer's live
-- token) is kept sealed under the server secret, like the service token.
ALTER TABLE tokens ADD COLUMN sealed {{bytes}};
