-- The admin API: users an operator disabled (they cannot log in, and every
-- token they hold was revoked when they were disabled), and the admin
-- tokens it takes, stored hashed like every token, by name.
ALTER TABLE users ADD COLUMN disabled_at {{int}} NOT NULL DEFAULT 0;
CREATE TABLE admin_tokens (
    name       TEXT    PRIMARY KEY,
    hash       {{bytes}} NOT NULL UNIQUE,
    created_at {{int}} NOT NULL
){{without_rowid}};
