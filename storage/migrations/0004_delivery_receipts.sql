-- 0004: delivery positions.
--
-- A member's devices acknowledge what they have received and stored with
-- `message.delivered`; the highest acknowledged seq is kept here, beside the
-- read position. It only moves forwards, and reading implies delivery, so it
-- starts at the read position.
ALTER TABLE chat_members ADD COLUMN delivered_seq INTEGER NOT NULL DEFAULT 0;
UPDATE chat_members SET delivered_seq = read_seq;
