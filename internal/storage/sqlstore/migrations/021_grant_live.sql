-- PostgreSQL's check that a token's grant is live, as a function: it takes
-- the grant's shared advisory lock and only then reads revoked_grants, in a
-- query of its own, so it sees a revocation that committed while it waited
-- for the lock (one statement reads with the snapshot it began with). On
-- SQLite the triggers of 020 check, and this file adds nothing.
{{grant_live}}
