-- 0007: bytes of stored messages per account, for the storage quota
-- (`limits.account_storage_bytes`).
--
-- The event writer adds the size of each message's and edit's stored body
-- (the binary envelope) to its sender's row, in the same transaction as the
-- event, and refuses a send that would take the account past the quota.
-- Deleting a message does not give its bytes back (the event stays in the
-- log). Rows of deleted accounts go with them.

CREATE TABLE account_storage (
    user_id      INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    stored_bytes INTEGER NOT NULL CHECK (stored_bytes >= 0)
) STRICT;

-- What was stored before this migration counts too.
INSERT INTO account_storage (user_id, stored_bytes)
    SELECT sender, SUM(length(body)) FROM chat_events
    WHERE kind IN ('message', 'edit') AND sender IN (SELECT id FROM users)
    GROUP BY sender;
