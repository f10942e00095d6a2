-- 0002: chats, their members and their event log.
--
-- Every change to a chat is one row of chat_events, numbered per chat by seq
-- (1, 2, 3, ... without gaps). Only storage::writer inserts events, and it
-- bumps chats.last_seq in the same transaction, so seqs only grow.
--
-- Deleted accounts: their memberships and direct-chat pairs go with them
-- (ON DELETE CASCADE). Their events stay: chat_events.sender has no foreign
-- key, so a deleted sender's id simply no longer resolves to a profile (ids
-- are never reused: users.id is AUTOINCREMENT). Before the account row is
-- deleted, the me.delete handler records a member_left event in each of its
-- chats and hands group ownership on (storage::writer, Change::AccountDeleted).

CREATE TABLE chats (
    -- AUTOINCREMENT: the id of a chat is never handed out again.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL CHECK (kind IN ('direct', 'group')),
    -- NULL for direct chats.
    title       TEXT,
    created_at  INTEGER NOT NULL,
    -- seq of the newest event (0: none yet); the next event takes last_seq + 1.
    last_seq    INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Current members only: a removed or departed member's row is deleted, so
-- every membership check ("may this user read or write this chat?") is one
-- primary-key lookup, and a removed member cannot read anything any more.
CREATE TABLE chat_members (
    chat_id     INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at   INTEGER NOT NULL,
    -- seq of the event that added this member. A member sees the log from
    -- here on: earlier messages were not encrypted for them anyway.
    joined_seq  INTEGER NOT NULL,
    -- Highest seq this member has read; only ever moves forwards.
    read_seq    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
) WITHOUT ROWID, STRICT;

CREATE INDEX chat_members_user ON chat_members (user_id, chat_id);

-- One direct chat per pair of users: the pair (smaller id first) is the key.
CREATE TABLE direct_chats (
    user_low    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_high   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id     INTEGER NOT NULL UNIQUE REFERENCES chats (id) ON DELETE CASCADE,
    PRIMARY KEY (user_low, user_high),
    CHECK (user_low < user_high)
) WITHOUT ROWID, STRICT;

CREATE TABLE chat_events (
    chat_id       INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    -- Who caused the event. No foreign key: see the note on deleted accounts.
    sender        INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    -- The `type` of the body, for queries that must not parse JSON.
    kind          TEXT    NOT NULL CHECK (kind IN ('message', 'edit', 'delete', 'created',
                      'members_added', 'member_removed', 'member_left', 'renamed',
                      'role_changed')),
    -- The message an edit or delete refers to.
    target_seq    INTEGER,
    -- The client's id of a message or edit: a retry with the same id finds
    -- the stored event instead of storing a second one.
    client_msg_id TEXT,
    -- The event body as JSON (core::proto::EventBody). Message bodies are
    -- end-to-end encrypted envelopes: the server stores them opaquely.
    body          TEXT    NOT NULL,
    PRIMARY KEY (chat_id, seq),
    -- NULLs are distinct in SQLite, so events without a client id never collide.
    UNIQUE (chat_id, sender, client_msg_id)
) WITHOUT ROWID, STRICT;

-- "Is this message deleted?" and "what are its edits?"
CREATE INDEX chat_events_target ON chat_events (chat_id, target_seq)
    WHERE target_seq IS NOT NULL;
