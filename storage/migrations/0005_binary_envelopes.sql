-- 0005: message envelopes are stored in binary.
--
-- Until now every event body was JSON text, and a message's envelope in it
-- carried its ciphertext, key wraps and signature as base64: 3.3 KB for a
-- 1 KiB direct message, a third of it base64 overhead, written to the WAL,
-- fsynced and checkpointed for every message. From now on the body of a
-- `message` or `edit` event is a BLOB: the envelope in a compact binary form
-- (core `Envelope::to_stored`, 2.3 KB for the same message); the message's
-- client id and an edit's target are already columns. Every other kind of
-- event keeps its JSON text, and rows stored before this migration stay as
-- they are: a reader tells the two apart by the value's type.
--
-- A STRICT table cannot hold a BLOB in a TEXT column, so the table is
-- rebuilt with `body ANY` (same columns, constraints and indexes).

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
    -- JSON text (core::proto::EventBody), or for `message` and `edit`
    -- events a BLOB with the stored envelope.
    body          ANY     NOT NULL CHECK (typeof(body) IN ('text', 'blob'))
) STRICT;

INSERT INTO chat_events_new (chat_id, seq, sender, at, kind, target_seq, client_msg_id, body)
    SELECT chat_id, seq, sender, at, kind, target_seq, client_msg_id, body
    FROM chat_events ORDER BY rowid;

DROP TABLE chat_events;
ALTER TABLE chat_events_new RENAME TO chat_events;

CREATE UNIQUE INDEX chat_events_seq ON chat_events (chat_id, seq);
CREATE UNIQUE INDEX chat_events_client_msg ON chat_events (chat_id, sender, client_msg_id);
CREATE INDEX chat_events_target ON chat_events (chat_id, target_seq)
    WHERE target_seq IS NOT NULL;
