-- A token or refresh token of a disabled user, or of a revoked grant, is
-- not stored (storage.ErrUserDisabled, ErrGrantRevoked). On SQLite the
-- schema refuses it: triggers abort such an insert, and with one writer
-- nothing runs between their check and the insert. On PostgreSQL the insert
-- statement checks, holding the locks that order it with DisableUser and
-- RevokeGrant (sqlstore's whileLive), and this file adds nothing.
{{live_inserts}}
