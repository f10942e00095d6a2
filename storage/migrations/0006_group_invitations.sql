-- 0006: consent to group membership.
--
-- users.who_can_add_me: who may put the account into a group directly
-- (core::proto::GroupAddPolicy). Anyone else's add becomes a row of
-- chat_invitations, which the invitee accepts (then storage::writer makes
-- them a member, with the usual members_added event) or declines. An
-- invitee is no member: chat_members, and so history, delivery, key wraps,
-- presence and profile updates, know nothing of them.
ALTER TABLE users ADD COLUMN who_can_add_me TEXT NOT NULL DEFAULT 'chat_partners'
    CHECK (who_can_add_me IN ('everyone', 'chat_partners', 'nobody'));

CREATE TABLE chat_invitations (
    chat_id     INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- No foreign key: an invitation outlives its inviter's account (the id
    -- then no longer resolves to a profile, as for events).
    inviter_id  INTEGER NOT NULL,
    invited_at  INTEGER NOT NULL,
    -- Expired rows are ignored, and pruned when the invitee gets another.
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (chat_id, user_id)
) WITHOUT ROWID, STRICT;

-- An invitee's list (newest first), and the cap on pending invitations per
-- invitee (storage::invitations::MAX_PENDING), which drops the oldest.
CREATE INDEX chat_invitations_user ON chat_invitations (user_id, invited_at);
