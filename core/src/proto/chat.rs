//! Chats, their event log and the live (unstored) events.
//!
//! Every chat has an append-only log of [`ChatEvent`]s numbered by `seq`
//! (1, 2, 3, ...): messages, edits, deletes and membership changes. History,
//! offline delivery and resume after reconnect all read the same log.
//!
//! A member sees the log from the event that added them on (`created` or
//! `members_added`): older messages were not encrypted for them. A removed
//! member sees nothing of the chat any more (`not_a_member`).

use crate::ids::{ChatId, Seq, Timestamp, UserId};
use crate::proto::account::UserProfile;
use crate::proto::envelope::Envelope;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    Direct,
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: UserProfile,
    pub role: Role,
    pub joined_at: Timestamp,
    /// Highest seq this member has read.
    pub read_seq: Seq,
    /// Highest seq a device of this member has received (at least `read_seq`).
    #[serde(default)]
    pub delivered_seq: Seq,
}

/// A chat with its members (`chat.get`, and the answer of create commands).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    pub id: ChatId,
    pub kind: ChatKind,
    /// Group title; `None` for direct chats (clients show the peer's name).
    pub title: Option<String>,
    pub created_at: Timestamp,
    pub last_seq: Seq,
    pub members: Vec<Member>,
    /// Only in the answer of `chat.create_group` and `chat.add_members`: the
    /// users named there who did not become members at once. Each was sent
    /// an invitation, unless no such account exists: the two cases are
    /// answered alike, so the answer does not tell which ids exist or who
    /// declines strangers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invited: Vec<UserId>,
}

/// One row of `chat.list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSummary {
    pub id: ChatId,
    pub kind: ChatKind,
    pub title: Option<String>,
    /// The other member of a direct chat.
    pub peer: Option<UserProfile>,
    pub member_count: u32,
    pub my_role: Role,
    pub last_seq: Seq,
    pub my_read_seq: Seq,
    /// Messages after `my_read_seq` not sent by me (deleted ones not counted).
    pub unread_count: u32,
    /// The furthest any other member has read: my messages up to it are read.
    #[serde(default)]
    pub others_read_seq: Seq,
    /// The furthest a device of any other member has received: my messages
    /// up to it are delivered.
    #[serde(default)]
    pub others_delivered_seq: Seq,
    /// The newest message event not deleted (for the preview), if any.
    pub last_message: Option<ChatEvent>,
}

/// One entry of a chat's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatEvent {
    pub chat_id: ChatId,
    pub seq: Seq,
    /// Who caused it (the sender of a message, the admin who added someone).
    /// The events of a deleted account stay; its id no longer resolves.
    pub sender: UserId,
    pub at: Timestamp,
    pub body: EventBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// A new end-to-end encrypted message.
    Message {
        client_msg_id: String,
        envelope: Envelope,
    },
    /// A new envelope replacing the message at `target_seq` (marked edited).
    /// The envelope's `client_msg_id` is the edit's own, not the message's.
    Edit {
        target_seq: Seq,
        envelope: Envelope,
    },
    /// The message at `target_seq` was deleted for everyone.
    Delete {
        target_seq: Seq,
    },
    Created {
        title: Option<String>,
        members: Vec<UserId>,
    },
    MembersAdded {
        user_ids: Vec<UserId>,
    },
    MemberRemoved {
        user_id: UserId,
    },
    /// Left the group, or the account was deleted (then also in direct chats).
    MemberLeft {
        user_id: UserId,
    },
    Renamed {
        title: String,
    },
    /// An ownership transfer is two events in a row: the new owner's
    /// `owner`, then the old owner's `admin`. When an owner's account is
    /// deleted, the successor's `owner` follows its `member_left`.
    RoleChanged {
        user_id: UserId,
        role: Role,
    },
}

/// Events that are delivered to online sessions but never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    Typing {
        chat_id: ChatId,
        user_id: UserId,
    },
    ReadReceipt {
        chat_id: ChatId,
        user_id: UserId,
        seq: Seq,
    },
    /// A device of `user_id` has received the chat up to `seq`. Sent to the
    /// members whose messages it newly covers, and to `user_id`'s sessions.
    DeliveryReceipt {
        chat_id: ChatId,
        user_id: UserId,
        seq: Seq,
    },
    /// Someone I share a chat with (or I, on another device) changed their
    /// display name, handle or bio.
    ProfileChanged {
        user: UserProfile,
    },
    Presence {
        user_id: UserId,
        online: bool,
        last_seen_at: Option<Timestamp>,
    },
    /// I was added to a chat (or created one on another device).
    ChatJoined {
        chat: Box<ChatSummary>,
    },
    /// I was removed from a chat or left it on another device.
    ChatRemoved {
        chat_id: ChatId,
    },
    /// I was invited to a group (by someone I do not chat with, or my
    /// privacy setting says nobody may add me).
    Invited {
        invitation: Invitation,
    },
    /// An invitation of mine is gone: accepted or declined on another
    /// device (an accept also brings `chat_joined`).
    InvitationClosed {
        chat_id: ChatId,
    },
}

/// A pending invitation to a group, as only the invitee sees it. Until
/// accepted the invitee is no member: no history, no messages, no key
/// wraps, no presence or profile updates either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub chat_id: ChatId,
    pub title: Option<String>,
    /// Who invited me (`None` once that account is gone).
    pub inviter: Option<UserProfile>,
    pub member_count: u32,
    pub invited_at: Timestamp,
    /// After this the invitation is gone.
    pub expires_at: Timestamp,
}

/// `chat.invitations`: my pending invitations, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationList {
    pub invitations: Vec<Invitation>,
}

/// `chat.create_direct`: the one direct chat with `user_id` (created on first
/// use); answers the [`Chat`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDirectRequest {
    pub user_id: UserId,
}

/// `chat.create_group`: the caller becomes owner (listing the caller in
/// `member_ids` is allowed; duplicates count once); answers the [`Chat`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroupRequest {
    pub title: String,
    pub member_ids: Vec<UserId>,
}

/// `chat.get` (answers the [`Chat`]), `chat.leave` and `chat.typing` (answer
/// `{}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRef {
    pub chat_id: ChatId,
}

/// `chat.list`: one page of my chats, the most recently active first;
/// answers [`ChatList`]. `{}` is the first page of [`DEFAULT_CHAT_PAGE`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatListRequest {
    /// The previous page's `next_cursor` (opaque); none for the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Most chats on the page, 1 to [`MAX_CHAT_PAGE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Chats on a `chat.list` page when the request names no `limit`.
pub const DEFAULT_CHAT_PAGE: u32 = 100;
/// Most chats a `chat.list` page may be asked for.
pub const MAX_CHAT_PAGE: u32 = 500;

/// A page of `chat.list`. A page also ends before it would go over the
/// server's `limits.max_reply_bytes` (it always holds at least one chat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatList {
    pub chats: Vec<ChatSummary>,
    /// Where the next page starts (send it as `cursor`); null on the last
    /// page. The pages keep the order of the first one: a chat active since
    /// does not move, and new events reach the client live meanwhile.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `chat.rename` (admins); answers the [`Chat`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameChatRequest {
    pub chat_id: ChatId,
    pub title: String,
}

/// `chat.add_members` (admins); answers the [`Chat`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMembersRequest {
    pub chat_id: ChatId,
    pub user_ids: Vec<UserId>,
}

/// `chat.remove_member` (admins remove members, the owner also admins),
/// `chat.transfer_ownership` (owner); both answer the [`Chat`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatMemberRequest {
    pub chat_id: ChatId,
    pub user_id: UserId,
}

/// `chat.set_role` (owner): make a member admin or member; answers the [`Chat`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    pub chat_id: ChatId,
    pub user_id: UserId,
    pub role: Role,
}

/// `message.send`. A retry with the same `client_msg_id` in the same chat is
/// answered with the stored event and `duplicate: true`, never stored twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    pub chat_id: ChatId,
    /// 1-64 characters chosen by the client (a UUID or random hex).
    pub client_msg_id: String,
    pub envelope: Envelope,
}

/// Acknowledgment: sent only after the event is committed to the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAck {
    pub chat_id: ChatId,
    pub seq: Seq,
    pub at: Timestamp,
    pub duplicate: bool,
}

/// `message.edit` (own messages); answers a [`MessageAck`] for the edit event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditMessageRequest {
    pub chat_id: ChatId,
    pub target_seq: Seq,
    pub envelope: Envelope,
}

/// `message.delete` (own messages, for everyone); answers a [`MessageAck`]
/// for the delete event (`duplicate: true` when it was deleted already).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteMessageRequest {
    pub chat_id: ChatId,
    pub target_seq: Seq,
}

/// `message.history`: events with `after_seq < seq < before_seq`, oldest first,
/// at most `limit` (default 50, max 200). With only `before_seq` (or neither) the
/// newest page is returned; with `after_seq` the oldest page after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryRequest {
    pub chat_id: ChatId,
    #[serde(default)]
    pub before_seq: Option<Seq>,
    #[serde(default)]
    pub after_seq: Option<Seq>,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub events: Vec<ChatEvent>,
    /// True when older (or, with `after_seq`, newer) events remain.
    pub more: bool,
}

/// `message.read`: my read position (never moves backwards, capped at the
/// chat's `last_seq`); answers `{}`. When it moves, every member's sessions
/// get a [`LiveEvent::ReadReceipt`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkReadRequest {
    pub chat_id: ChatId,
    pub seq: Seq,
}

/// `message.delivered`: a device has received and stored the chat up to
/// `seq` (never moves backwards, capped at the chat's `last_seq`); answers
/// `{}`. When it moves, the members whose messages it newly covers get a
/// [`LiveEvent::DeliveryReceipt`].
pub type MarkDeliveredRequest = MarkReadRequest;

/// `presence.get`: at most 200 users; users sharing no chat with the caller
/// are left out of the answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceRequest {
    pub user_ids: Vec<UserId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceInfo {
    pub user_id: UserId,
    pub online: bool,
    pub last_seen_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceList {
    pub users: Vec<PresenceInfo>,
}
