-- 0003: chat_events becomes a rowid table.
--
-- 0002 made it WITHOUT ROWID, which keeps each whole row in the primary-key
-- b-tree. Message rows are large (an envelope is 3 KiB and more), so they
-- overflow their pages, and SQLite then reads every such row in full to
-- compare keys while it seeks: each append and each lookup read several
-- overflow pages (the event writer spent over a third of its time there).
-- SQLite advises WITHOUT ROWID for small rows only. The columns and
-- constraints stay the same; the keys become named unique indexes, and rows
-- are appended at the end of the table b-tree in rowid order.

CREATE TABLE chat_events_new (
    chat_id       INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    sender        INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('message', 'edit', 'delete', 'created',
                      'members_added', 'member_removed', 'member_left', 'renamed',
                      'role_changed')),
    target_seq    INTEGER,
    client_msg_id TEXT,
    body          TEXT    NOT NULL
) STRICT;

INSERT INTO chat_events_new (chat_id, seq, sender, at, kind, target_seq, client_msg_id, body)
    SELECT chat_id, seq, sender, at, kind, target_seq, client_msg_id, body
    FROM chat_events ORDER BY chat_id, seq;

DROP TABLE chat_events;
ALTER TABLE chat_events_new RENAME TO chat_events;

-- The former primary key: one event per (chat, seq).
CREATE UNIQUE INDEX chat_events_seq ON chat_events (chat_id, seq);
-- A retry with the same client id finds the stored event (NULLs are distinct).
CREATE UNIQUE INDEX chat_events_client_msg ON chat_events (chat_id, sender, client_msg_id);
-- "Is this message deleted?" and "what are its edits?"
CREATE INDEX chat_events_target ON chat_events (chat_id, target_seq)
    WHERE target_seq IS NOT NULL;
