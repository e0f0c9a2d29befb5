-- Grants that were revoked (a family: the code or device code a grant
-- began with, or the token others were exchanged from). No token or
-- refresh token is stored into one afterwards, so a write that was under
-- way when its grant was revoked (a rotation between spending the old
-- refresh token and storing the next) cannot leave a live token in it.
CREATE TABLE revoked_grants (
    family     {{bytes}} PRIMARY KEY,
    revoked_at {{int}} NOT NULL
){{without_rowid}};
CREATE INDEX revoked_grants_at ON revoked_grants (revoked_at);
