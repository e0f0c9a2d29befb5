-- VK ID (vkid-wire.md §1–3): the device_id a code was issued to, which its
-- redemption at /oauth2/auth must name, and that its grant's refresh tokens
-- are bound to ('' for none: codes and grants of the other dialects).
ALTER TABLE codes ADD COLUMN device_id TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN device_id TEXT NOT NULL DEFAULT '';
