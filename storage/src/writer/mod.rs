//! The group-commit writer: the one path by which chat events, and the
//! membership changes they record, reach the database.
//!
//! One dedicated thread owns one SQLite connection. Requests arrive through
//! a bounded channel; the thread takes every request waiting (up to
//! `max_batch`) into ONE `BEGIN IMMEDIATE ... COMMIT` transaction, so many
//! messages share one fsync. Each request runs in its own savepoint: a
//! request that is refused (not a member any more, not allowed, ...) leaves
//! no trace and does not disturb the others. Each caller is answered only
//! after the commit succeeded; if the commit (or any statement) fails, every
//! request of the batch fails and nothing of it is stored.
//!
//! Inside the transaction the writer re-checks what may have changed since
//! the handler looked: membership and role of the sender, that a message's
//! wrapped keys still name exactly the current members, that an edit's
//! target is still there. Cryptographic checks of envelopes (structure,
//! origin) are the handlers' job and happen before the request is sent here.
//!
//! After the commit, and before answering, the writer hands every new event
//! to the [`CommitListener`] in seq order, so live fan-out sees each chat's
//! events in the order they were stored.
//!
//! Layout: this file is the public handle ([`EventWriter`]) and the request
//! and answer types; `thread.rs` the batch loop (one transaction per batch,
//! a savepoint per request, announce, answer); `checkpoint.rs` the WAL
//! checkpointer beside it; `apply.rs` what each request reads and writes;
//! `rules.rs` the policy decisions (who may do what) that `apply.rs` asks
//! inside the transaction; `stats.rs` batch statistics.

mod apply;
mod checkpoint;
mod rules;
mod stats;
#[cfg(test)]
pub(crate) mod tests;
mod thread;

pub use stats::{WriterStats, STAT_BUCKETS};

use crate::chats::Receipt;
use crate::invitations::InvitationLimits;
use crate::{Storage, StorageError};
use checkpoint::Checkpointer;
use ferrogram_core::ids::{ChatId, Origin, Seq, UserId};
use ferrogram_core::proto::{ChatEvent, Envelope, Role};
use rusqlite::Connection;
use stats::StatsCell;
use std::sync::Arc;
use thread::{Job, Thread};
use tokio::sync::{mpsc, oneshot};

/// Most requests committed in one transaction.
pub const DEFAULT_MAX_BATCH: usize = 256;
/// Requests that may wait for the writer before senders have to wait too.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    pub max_batch: usize,
    pub queue_capacity: usize,
    /// Group commit under load: after a transaction of at least
    /// [`BUSY_BATCH`] requests the writer waits this long before taking the
    /// next batch, so more requests share its commit (and fsync). Zero (the
    /// default; the server's `database.commit_delay_us`) never waits.
    pub commit_delay: std::time::Duration,
    /// Bytes of message and edit bodies one account may have stored (the
    /// server's `limits.account_storage_bytes`); 0 means no limit. Counted
    /// in `account_storage` whatever the limit.
    pub account_storage_bytes: u64,
}

/// A batch at least this large means the writer is busy: the next one may
/// wait [`WriterConfig::commit_delay`] for company. A lone request never
/// waits.
pub const BUSY_BATCH: usize = 8;

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: DEFAULT_MAX_BATCH,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            commit_delay: std::time::Duration::ZERO,
            account_storage_bytes: 0,
        }
    }
}

/// Told about every stored event right after its commit, on the writer's
/// thread, in commit (and so per-chat seq) order. Must not block: hand the
/// event to a channel or an actor mailbox and return.
pub trait CommitListener: Send + Sync {
    /// `recipients`: the chat's members after the change, plus anyone the
    /// change removed (they learn of their removal through it). `context`:
    /// where the change came from (see [`EventWriter::append`]).
    fn committed(&self, event: &ChatEvent, recipients: &[UserId], context: WriteContext);

    /// Every event of one committed batch has been passed, and none of its
    /// callers has been answered yet (not called for a batch without events). A listener that gathers a batch's
    /// events (to hand them on with one wake-up instead of one per event)
    /// hands them on now.
    fn batch_done(&self) {}
}

/// A change to an existing chat, recorded as one (or, for an ownership
/// transfer, two) events.
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
        max_members: usize,
        invitations: InvitationLimits,
    },
    /// The sender accepts their invitation to the group: they become a
    /// member (a `members_added` event whose sender is the new member).
    AcceptInvitation { max_members: usize },
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
    /// longest-standing admin, else the longest-standing member.
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
        max_members: usize,
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

/// A read or delivery position after `mark_read` / `mark_delivered`.
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

/// Why a request was not stored. Everything but `Failed` and `Closed` is a
/// refusal of this one request; the rest of its batch is unaffected.
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
    #[error("this cannot be done to yourself")]
    CannotTargetSelf,
    #[error("direct chats have exactly their two members and no title")]
    DirectChat,
    #[error("this needs the {0:?} role")]
    RoleRequired(Role),
    #[error("only the owner may do this to an admin or the owner")]
    Outranked,
    #[error("the owner must transfer ownership before leaving")]
    OwnerMustTransfer,
    #[error("ownership moves only with a transfer")]
    InvalidRole,
    #[error("a group has at most {max} members")]
    TooManyMembers { max: usize },
    #[error("the members of the chat changed; seal the message for the current members")]
    MembersChanged,
    #[error("no such message")]
    MessageNotFound,
    #[error("only the author may change a message")]
    NotMessageAuthor,
    #[error("this client_msg_id was already used for something else")]
    ClientMsgIdReused,
    #[error("your account's storage of {quota} bytes of messages is full")]
    QuotaExceeded { quota: u64 },
    #[error("no pending invitation to this chat")]
    NoInvitation,
    /// The batch could not be committed (the cause is logged); nothing of it
    /// was stored, so the request may be retried.
    #[error("the database write failed")]
    Failed,
    #[error("the event writer has stopped")]
    Closed,
}

/// Handle to the writer thread; cheap to clone. The thread ends once every
/// handle is dropped and the queue is drained.
#[derive(Clone)]
pub struct EventWriter {
    jobs: mpsc::Sender<Job>,
    stats: Arc<StatsCell>,
}

impl std::fmt::Debug for EventWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventWriter")
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

impl EventWriter {
    /// Opens the writer's own connection to `storage`'s database (already
    /// migrated by `Storage::open`) and starts its thread.
    pub fn start(
        storage: &Storage,
        config: WriterConfig,
        listener: Option<Arc<dyn CommitListener>>,
    ) -> Result<EventWriter, StorageError> {
        Self::spawn(storage, config, listener, None)
    }

    /// `start`, but the thread takes no request until `gate` receives (or is
    /// dropped): lets tests queue a known batch.
    #[cfg(test)]
    pub(crate) fn start_gated(
        storage: &Storage,
        config: WriterConfig,
        gate: std::sync::mpsc::Receiver<()>,
    ) -> Result<EventWriter, StorageError> {
        Self::spawn(storage, config, None, Some(gate))
    }

    /// `start_gated` with a listener.
    #[cfg(test)]
    pub(crate) fn start_gated_with(
        storage: &Storage,
        config: WriterConfig,
        listener: Arc<dyn CommitListener>,
        gate: std::sync::mpsc::Receiver<()>,
    ) -> Result<EventWriter, StorageError> {
        Self::spawn(storage, config, Some(listener), Some(gate))
    }

    fn spawn(
        storage: &Storage,
        config: WriterConfig,
        listener: Option<Arc<dyn CommitListener>>,
        gate: Option<std::sync::mpsc::Receiver<()>>,
    ) -> Result<EventWriter, StorageError> {
        let conn = Connection::open(storage.path())?;
        // The same settings as pooled connections, synchronous=FULL
        // included: in WAL mode every COMMIT waits for the WAL's fsync, so
        // an acknowledged message survives kill -9 and power loss alike.
        // Group commit is what makes that affordable: one fsync per batch.
        crate::configure(&conn)?;
        // Checkpoints (copying the WAL back into the database file) run on a
        // thread of their own instead of inside the writer's commits, where
        // SQLite's automatic checkpoint would stall a batch every few MB.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = Checkpointer::start(storage)?;
        let (jobs, queue) = mpsc::channel(config.queue_capacity.max(1));
        let stats = Arc::new(StatsCell::default());
        let thread = Thread {
            conn,
            queue,
            listener,
            stats: stats.clone(),
            max_batch: config.max_batch.max(1),
            commit_delay: config.commit_delay,
            quota: config.account_storage_bytes,
            wal_frames: checkpointer.wal_frames.clone(),
        };
        std::thread::Builder::new()
            .name("event-writer".into())
            .spawn(move || {
                if let Some(gate) = gate {
                    let _ = gate.recv();
                }
                thread.run();
                // Ends the checkpointer after a last checkpoint.
                drop(checkpointer);
            })
            .map_err(|e| StorageError::Task(format!("cannot start the event writer: {e}")))?;
        Ok(EventWriter { jobs, stats })
    }

    /// Stores a change to a chat; answers after the commit. `context` says
    /// where the request came from: for one that came in on a live
    /// connection, the commit listener is told, so that the event is not
    /// pushed back to that connection (its reply carries the seq).
    pub async fn append(
        &self,
        request: AppendRequest,
        context: WriteContext,
    ) -> Result<Appended, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Append {
            request: Some(request),
            context,
            reply,
            result: None,
        })
        .await?;
        answer.await.unwrap_or(Err(WriteError::Closed))
    }

    /// Creates a chat (or finds the existing direct chat); answers after the commit.
    pub async fn create_chat(&self, chat: NewChat) -> Result<Created, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Create {
            chat: Some(chat),
            reply,
            result: None,
        })
        .await?;
        answer.await.unwrap_or(Err(WriteError::Closed))
    }

    /// Deletes `user`'s account in one request: a `member_left` (and, for
    /// a group it owned, the successor's `owner`) in each of its chats, then
    /// the account row with its sessions and invitations. Membership changes
    /// are serialized by this writer, so an add racing the deletion either
    /// comes first (and the chat gets its `member_left` here) or finds the
    /// account gone. Answers one [`Appended`] per chat.
    pub async fn delete_account(&self, user: UserId) -> Result<Vec<Appended>, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::DeleteAccount {
            user,
            reply,
            result: None,
        })
        .await?;
        answer.await.unwrap_or(Err(WriteError::Closed))
    }

    /// Moves `user`'s read position in a chat forwards to `seq` (capped at
    /// the chat's last seq; the delivery position moves with it). Not an
    /// event; batched with the others.
    pub async fn mark_read(
        &self,
        chat_id: ChatId,
        user: UserId,
        seq: Seq,
    ) -> Result<PositionMark, WriteError> {
        self.mark(Receipt::Read, chat_id, user, seq).await
    }

    /// Moves `user`'s delivery position in a chat forwards to `seq` (capped
    /// at the chat's last seq). Not an event; batched with the others.
    pub async fn mark_delivered(
        &self,
        chat_id: ChatId,
        user: UserId,
        seq: Seq,
    ) -> Result<PositionMark, WriteError> {
        self.mark(Receipt::Delivered, chat_id, user, seq).await
    }

    /// Moves `user`'s read or delivery position (see `mark_read`,
    /// `mark_delivered`).
    pub async fn mark(
        &self,
        receipt: Receipt,
        chat_id: ChatId,
        user: UserId,
        seq: Seq,
    ) -> Result<PositionMark, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Position {
            receipt,
            chat_id,
            user,
            seq,
            reply,
            result: None,
        })
        .await?;
        answer.await.unwrap_or(Err(WriteError::Closed))
    }

    async fn submit(&self, job: Job) -> Result<(), WriteError> {
        self.jobs.send(job).await.map_err(|_| WriteError::Closed)
    }

    pub fn stats(&self) -> WriterStats {
        self.stats.snapshot()
    }

    /// Requests waiting for the writer right now.
    pub fn queued(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }
}
