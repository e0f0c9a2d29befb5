-- Where an app may send a person after signing them out (OpenID Connect
-- RP-Initiated Logout's post_logout_redirect_uri), matched exactly.
ALTER TABLE apps ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
