//! What a storage backend of chat events provides: the [`EventStore`] trait
//! the handlers hold (`HandlerCtx::writer`), its requests and answers, and
//! the [`CommitListener`] it tells of committed events.
//!
//! Today's one implementation is the SQLite group-commit writer
//! ([`crate::writer::EventWriter`]). A second backend (PostgreSQL) implements
//! [`EventStore`] with the same semantics: each request applied in a
//! transaction that also runs the [`crate::rules::ChatRules`] it was started
//! with, a refused request leaving no trace, each caller answered only after
//! the commit, and every committed event handed to the listener in per-chat
//! seq order before its caller hears the answer. The read side (the
//! repository functions of `chats`, `events`, `users`, ... on a
//! `rusqlite::Connection`) is not behind a trait yet.

use crate::chats::Receipt;
use crate::invitations::InvitationLimits;
use async_trait::async_trait;
use ferrogram_core::ids::{ChatId, Origin, Seq, UserId};
use ferrogram_core::proto::{ChatEvent, Envelope, Role};
use ferrogram_core::Refusal;

/// The write side of chat storage: every chat event, and the membership
/// changes they record, reach the database through it.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores a change to a chat; answers after the commit. `context` says
    /// where the request came from: for one that came in on a live
    /// connection, the commit listener is told, so that the event is not
    /// pushed back to that connection (its reply carries the seq).
    async fn append(
        &self,
        request: AppendRequest,
        context: WriteContext,
    ) -> Result<Appended, WriteError>;

    /// Creates a chat (or finds the existing direct chat); answers after the commit.
    async fn create_chat(&self, chat: NewChat) -> Result<Created, WriteError>;

    /// Deletes `user`'s account in one request: a `member_left` (and, for
    /// a group it owned, the successor's `owner`) in each of its chats, then
    /// the account row with its sessions and invitations. Membership changes
    /// are serialized with it, so an add racing the deletion either comes
    /// first (and the chat gets its `member_left` here) or finds the account
    /// gone. Answers one [`Appended`] per chat.
    async fn delete_account(&self, user: UserId) -> Result<Vec<Appended>, WriteError>;

    /// Moves `user`'s read or delivery position in a chat forwards to `seq`
    /// (capped at the chat's last seq; reading moves the delivery position
    /// with it). Not an event.
    async fn mark(
        &self,
        receipt: Receipt,
        chat_id: ChatId,
        user: UserId,
        seq: Seq,
    ) -> Result<PositionMark, WriteError>;
}

/// Told about every stored event right after its commit, on the writer's
/// thread, in commit (and so per-chat seq) order. Must not block: hand the
/// event to a channel or an actor mailbox and return.
pub trait CommitListener: Send + Sync {
    /// `recipients`: the chat's members after the change, plus anyone the
    /// change removed (they learn of their removal through it). `context`:
    /// where the change came from (see [`EventStore::append`]).
    fn committed(&self, event: &ChatEvent, recipients: &[UserId], context: WriteContext);

    /// Every event of one committed batch has been passed, and none of its
    /// callers has been answered yet (not called for a batch without events). A listener that gathers a batch's
    /// events (to hand them on with one wake-up instead of one per event)
    /// hands them on now.
    fn batch_done(&self) {}
}

/// A change to an existing chat, recorded as one (or, for an ownership
/// transfer, two) events. Who may make it is the [`crate::rules::ChatRules`]'
/// decision; the comments say what the server's rules allow.
#[derive(Debug, Clone)]
pub enum Change {
    /// A new message. A retry with the same `client_msg_id` returns the
    /// stored event with `duplicate: true`. The envelope's wraps must name
    /// exactly the current members (sorted, as `verify_structure` requires).
    Message {
        client_msg_id: String,
        envelope: Envelope,
    },
    /// A new envelope for the sender's own message at `target_seq`. The
    /// envelope's own `client_msg_id` makes a retried edit a duplicate.
    Edit { target_seq: Seq, envelope: Envelope },
    /// Deletes the sender's own message for everyone.
    Delete { target_seq: Seq },
    /// Admins and the owner, groups only. Each named user whose privacy
    /// setting lets the sender add them becomes a member; every other one
    /// that exists gets an invitation; ids without an account are skipped
    /// without a word (the caller answers them like invitees). Nothing is
    /// stored when nobody became a member or was invited.
    AddMembers {
        user_ids: Vec<UserId>,
        invitations: InvitationLimits,
    },
    /// The sender accepts their invitation to the group: they become a
    /// member (a `members_added` event whose sender is the new member).
    AcceptInvitation,
    /// Admins remove members, the owner removes admins and members.
    RemoveMember { user_id: UserId },
    /// Groups only; the owner only when alone (or after a transfer).
    Leave,
    /// Admins and the owner, groups only.
    Rename { title: String },
    /// The owner makes a member admin or member (never owner: see transfer).
    SetRole { user_id: UserId, role: Role },
    /// The owner hands over: the target becomes owner, the sender admin.
    TransferOwnership { user_id: UserId },
    /// The sender's account is about to be deleted: record that they left
    /// (direct chats too) and, if they owned the group, promote the
    /// successor the rules name.
    AccountDeleted,
}

/// Where a request came from, told to the [`CommitListener`] with its
/// events. `WriteContext::default()`: from no live connection (REST, or the
/// server itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteContext {
    /// The live connection the request came in on, if any.
    pub origin: Option<Origin>,
}

impl WriteContext {
    /// A request that came in on the live connection `origin`.
    pub fn from_origin(origin: Option<Origin>) -> Self {
        Self { origin }
    }
}

#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub chat_id: ChatId,
    /// The user making the change (the session's user).
    pub sender: UserId,
    pub change: Change,
}

/// What a committed append stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The stored events, oldest first; never empty, except for an
    /// `AddMembers` that only invited. For a duplicate, the event stored the
    /// first time.
    pub events: Vec<ChatEvent>,
    pub duplicate: bool,
    /// Members after the change, sorted.
    pub members: Vec<UserId>,
    pub added: Vec<UserId>,
    pub removed: Vec<UserId>,
    /// Users (with an account) who were invited instead of added, sorted.
    pub invited: Vec<UserId>,
}

impl Appended {
    /// The (first) stored event.
    pub fn event(&self) -> &ChatEvent {
        &self.events[0]
    }
}

/// A new chat.
#[derive(Debug, Clone)]
pub enum NewChat {
    /// The one direct chat of two users: returned as it is if it exists.
    Direct { creator: UserId, peer: UserId },
    /// `creator` becomes owner; `members` (the creator may be among them,
    /// duplicates count once) become members.
    Group {
        creator: UserId,
        title: String,
        members: Vec<UserId>,
        /// Named users the creator may not add directly are invited (see
        /// [`Change::AddMembers`]).
        invitations: InvitationLimits,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub chat_id: ChatId,
    /// The `created` event; `None` when the direct chat already existed.
    pub event: Option<ChatEvent>,
    /// Members, sorted.
    pub members: Vec<UserId>,
    /// Users (with an account) invited instead of added, sorted.
    pub invited: Vec<UserId>,
}

/// A read or delivery position after `mark`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionMark {
    pub seq: Seq,
    /// False when the position was already there or further.
    pub moved: bool,
    /// Who is told (empty when it did not move). A read receipt goes to
    /// every member (the others see how far I read, my other devices update
    /// their unread counts). A delivery receipt goes to the members whose
    /// messages it newly covers, and to me; in a busy group that is a few
    /// senders, not everyone.
    pub notify: Vec<UserId>,
}

/// Why a request was not stored. The data checks of the backend, a refusal
/// of the chat rules (`Refused`), or a failure (`Failed`, `Closed`).
/// Everything but `Failed` and `Closed` is a refusal of this one request;
/// the rest of its batch is unaffected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("no such chat")]
    ChatNotFound,
    #[error("you are not a member of this chat")]
    NotAMember,
    #[error("user {0} does not exist")]
    UserNotFound(UserId),
    #[error("user {0} is not a member of this chat")]
    NotMember(UserId),
    #[error("user {0} is already a member of this chat")]
    AlreadyMember(UserId),
    #[error("the members of the chat changed; seal the message for the current members")]
    MembersChanged,
    #[error("no such message")]
    MessageNotFound,
    #[error("this client_msg_id was already used for something else")]
    ClientMsgIdReused,
    #[error("no pending invitation to this chat")]
    NoInvitation,
    /// The chat rules did not allow the change.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The batch could not be committed (the cause is logged); nothing of it
    /// was stored, so the request may be retried.
    #[error("the database write failed")]
    Failed,
    #[error("the event writer has stopped")]
    Closed,
}
