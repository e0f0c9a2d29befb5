-- random_id deduplicates a sender's messages within one app (vk-wire.md §5):
-- two apps of one user may pick the same random_id.
DROP INDEX messages_dedupe;
CREATE UNIQUE INDEX messages_dedupe ON messages (app_id, from_user_id, from_community_id, random_id) WHERE random_id <> 0;
