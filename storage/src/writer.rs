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

use crate::chats::{self, Access, Membership, Receipt};
use crate::invitations::{self, InvitationLimits};
use crate::{events, users, Storage, StorageError};
use ferrogram_core::ids::{now_millis, ChatId, Millis, Origin, Seq, UserId};
use ferrogram_core::proto::{ChatEvent, ChatKind, Envelope, EventBody, Role};
use rusqlite::{Connection, TransactionBehavior};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    /// change removed (they learn of their removal through it).
    fn committed(&self, event: &ChatEvent, recipients: &[UserId]);

    /// As [`CommitListener::committed`], for an event whose request came in
    /// on the live connection `origin` (see [`EventWriter::append_from`]).
    fn committed_from(&self, event: &ChatEvent, recipients: &[UserId], origin: Option<Origin>) {
        let _ = origin;
        self.committed(event, recipients);
    }

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

/// Batch-size statistics, for benchmarks and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Committed transactions.
    pub transactions: u64,
    /// Transactions rolled back because a statement or the commit failed.
    pub failed_transactions: u64,
    /// Requests in committed transactions (refused ones included).
    pub requests: u64,
    pub largest_batch: u64,
    /// `batch_sizes[i]`: committed batches of `2^i` to `2^(i+1) - 1`
    /// requests; the last bucket also counts every larger batch.
    pub batch_sizes: [u64; STAT_BUCKETS],
}

pub const STAT_BUCKETS: usize = 10;

impl WriterStats {
    #[allow(clippy::cast_precision_loss)] // a statistic; counts stay far below 2^52
    pub fn mean_batch(&self) -> f64 {
        if self.transactions == 0 {
            0.0
        } else {
            self.requests as f64 / self.transactions as f64
        }
    }
}

#[derive(Default)]
struct StatsCell {
    transactions: AtomicU64,
    failed_transactions: AtomicU64,
    requests: AtomicU64,
    largest_batch: AtomicU64,
    batch_sizes: [AtomicU64; STAT_BUCKETS],
}

impl StatsCell {
    fn committed(&self, size: usize) {
        let size = size as u64;
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(size, Ordering::Relaxed);
        self.largest_batch.fetch_max(size, Ordering::Relaxed);
        let bucket = (size.max(1).ilog2() as usize).min(STAT_BUCKETS - 1);
        self.batch_sizes[bucket].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> WriterStats {
        WriterStats {
            transactions: self.transactions.load(Ordering::Relaxed),
            failed_transactions: self.failed_transactions.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
            batch_sizes: std::array::from_fn(|i| self.batch_sizes[i].load(Ordering::Relaxed)),
        }
    }
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

    /// Stores a change to a chat; answers after the commit.
    pub async fn append(&self, request: AppendRequest) -> Result<Appended, WriteError> {
        self.append_inner(request, None).await
    }

    /// [`EventWriter::append`] for a request that came in on the live
    /// connection `origin`: the commit listener is told, so that the event is
    /// not pushed back to that connection (its reply carries the seq).
    pub async fn append_from(
        &self,
        request: AppendRequest,
        origin: Origin,
    ) -> Result<Appended, WriteError> {
        self.append_inner(request, Some(origin)).await
    }

    async fn append_inner(
        &self,
        request: AppendRequest,
        origin: Option<Origin>,
    ) -> Result<Appended, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Append {
            request: Some(request),
            origin,
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

/// How often the checkpointer copies committed WAL frames into the
/// database file. Often, so that the writer's own completing checkpoint
/// (see [`WAL_RESTART_FRAMES`]) finds little left to copy and sync: at 25 ms
/// instead of 200 ms, p99 at 3k msg/s fell from ~100 ms to 30-52 ms.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(25);

/// WAL frames (pages, 256 MiB) after which the writer finishes a checkpoint
/// itself.
/// The checkpointer's PASSIVE checkpoints never wait for the writer, so
/// under sustained load the writer always appends before one completes and
/// SQLite never starts the WAL over: it would grow without bound (and every
/// read would search an ever larger WAL index). Between two of its own
/// transactions the writer's PASSIVE checkpoint does complete (it only has
/// the frames since the checkpointer's last run to copy), and its next
/// transaction starts the WAL from the beginning. A RESTART checkpoint from
/// the checkpointer would do the same but make the writer sleep in SQLite's
/// busy handler (stalls of 80-130 ms measured).
const WAL_RESTART_FRAMES: i64 = 65_536;

/// The thread that checkpoints the WAL for the writer (PASSIVE: it never
/// blocks the writer or readers) and tells it how long the WAL is.
/// Dropping this handle stops it after one last checkpoint.
struct Checkpointer {
    _stop: std::sync::mpsc::Sender<()>,
    /// Frames in the WAL at the last checkpoint.
    wal_frames: Arc<std::sync::atomic::AtomicI64>,
}

impl Checkpointer {
    fn start(storage: &Storage) -> Result<Checkpointer, StorageError> {
        let conn = Connection::open(storage.path())?;
        crate::configure(&conn)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let wal_frames = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let frames_seen = wal_frames.clone();
        std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || loop {
                let last = matches!(
                    stopped.recv_timeout(CHECKPOINT_INTERVAL),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
                );
                match passive_checkpoint(&conn) {
                    Ok(frames) => frames_seen.store(frames, Ordering::Relaxed),
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; will retry"),
                }
                if last {
                    break;
                }
            })
            .map_err(|e| StorageError::Task(format!("cannot start the checkpointer: {e}")))?;
        Ok(Checkpointer {
            _stop: stop,
            wal_frames,
        })
    }
}

/// `PRAGMA wal_checkpoint(PASSIVE)`; the frames in the WAL.
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    // (busy, frames in the WAL, frames checkpointed)
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}

type Reply<T> = oneshot::Sender<Result<T, WriteError>>;

/// One queued request, its reply channel and, once applied, its result.
enum Job {
    Append {
        request: Option<AppendRequest>,
        /// The live connection the request came in on, if any.
        origin: Option<Origin>,
        reply: Reply<Appended>,
        result: Option<Result<Appended, WriteError>>,
    },
    Create {
        chat: Option<NewChat>,
        reply: Reply<Created>,
        result: Option<Result<Created, WriteError>>,
    },
    Position {
        receipt: Receipt,
        chat_id: ChatId,
        user: UserId,
        seq: Seq,
        reply: Reply<PositionMark>,
        result: Option<Result<PositionMark, WriteError>>,
    },
    DeleteAccount {
        user: UserId,
        reply: Reply<Vec<Appended>>,
        result: Option<Result<Vec<Appended>, WriteError>>,
    },
}

/// Inside the transaction: a refusal of one request, or a storage failure
/// that fails the whole batch.
enum Fail {
    Refused(WriteError),
    Storage(StorageError),
}

impl From<WriteError> for Fail {
    fn from(e: WriteError) -> Self {
        Fail::Refused(e)
    }
}

impl From<StorageError> for Fail {
    fn from(e: StorageError) -> Self {
        Fail::Storage(e)
    }
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Storage(e.into())
    }
}

/// Splits a request's outcome: its result for the caller, or the storage
/// error that fails the batch. Returns whether the request's writes stay.
fn settle<T>(
    outcome: Result<T, Fail>,
    result: &mut Option<Result<T, WriteError>>,
) -> Result<bool, StorageError> {
    match outcome {
        Ok(done) => {
            *result = Some(Ok(done));
            Ok(true)
        }
        Err(Fail::Refused(e)) => {
            *result = Some(Err(e));
            Ok(false)
        }
        Err(Fail::Storage(e)) => Err(e),
    }
}

impl Job {
    /// True when every refusal of this request comes before its first write
    /// (new messages: all checks read, then one update and one insert), so
    /// it needs no savepoint.
    fn refused_before_writing(&self) -> bool {
        matches!(
            self,
            Job::Append {
                request: Some(AppendRequest {
                    change: Change::Message { .. },
                    ..
                }),
                ..
            }
        )
    }

    /// Applies the request inside the batch transaction.
    fn apply(&mut self, conn: &Connection, at: Millis, quota: u64) -> Result<bool, StorageError> {
        match self {
            Job::Append {
                request, result, ..
            } => match request.take() {
                Some(request) => settle(apply_change(conn, request, at, quota), result),
                None => Ok(false),
            },
            Job::Create { chat, result, .. } => match chat.take() {
                Some(chat) => settle(create_chat(conn, chat, at), result),
                None => Ok(false),
            },
            Job::Position {
                receipt,
                chat_id,
                user,
                seq,
                result,
                ..
            } => settle(mark(conn, *receipt, *chat_id, *user, *seq), result),
            Job::DeleteAccount { user, result, .. } => {
                settle(delete_account(conn, *user, at), result)
            }
        }
    }

    /// After the commit: tells the listener of the new events. False when
    /// there were none (a refusal, a duplicate, a position).
    fn announce(&self, listener: &dyn CommitListener) -> bool {
        match self {
            Job::Append {
                result: Some(Ok(appended)),
                origin,
                ..
            } if !appended.duplicate => {
                let recipients = union(&appended.members, &appended.removed);
                for event in &appended.events {
                    announce(listener, event, &recipients, *origin);
                }
                true
            }
            Job::Create {
                result:
                    Some(Ok(Created {
                        event: Some(event),
                        members,
                        ..
                    })),
                ..
            } => {
                announce(listener, event, members, None);
                true
            }
            Job::DeleteAccount {
                result: Some(Ok(departures)),
                ..
            } => {
                for appended in departures {
                    let recipients = union(&appended.members, &appended.removed);
                    for event in &appended.events {
                        announce(listener, event, &recipients, None);
                    }
                }
                !departures.is_empty()
            }
            _ => false,
        }
    }

    /// After the announcement: answers the caller (who may have gone away;
    /// what was stored stays stored all the same).
    fn answer(self) {
        match self {
            Job::Append { reply, result, .. } => {
                let _ = reply.send(result.unwrap_or(Err(WriteError::Failed)));
            }
            Job::Create { reply, result, .. } => {
                let _ = reply.send(result.unwrap_or(Err(WriteError::Failed)));
            }
            Job::Position { reply, result, .. } => {
                let _ = reply.send(result.unwrap_or(Err(WriteError::Failed)));
            }
            Job::DeleteAccount { reply, result, .. } => {
                let _ = reply.send(result.unwrap_or(Err(WriteError::Failed)));
            }
        }
    }

    fn fail(self) {
        match self {
            Job::Append { reply, .. } => drop(reply.send(Err(WriteError::Failed))),
            Job::Create { reply, .. } => drop(reply.send(Err(WriteError::Failed))),
            Job::Position { reply, .. } => drop(reply.send(Err(WriteError::Failed))),
            Job::DeleteAccount { reply, .. } => drop(reply.send(Err(WriteError::Failed))),
        }
    }
}

/// A panicking listener must not take the writer (and every later message) down.
fn announce(
    listener: &dyn CommitListener,
    event: &ChatEvent,
    recipients: &[UserId],
    origin: Option<Origin>,
) {
    let call = std::panic::catch_unwind(AssertUnwindSafe(|| {
        listener.committed_from(event, recipients, origin);
    }));
    if call.is_err() {
        tracing::error!(chat_id = %event.chat_id, seq = event.seq, "commit listener panicked");
    }
}

/// [`CommitListener::batch_done`], panics caught as in [`announce`].
fn finish_batch(listener: &dyn CommitListener) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| listener.batch_done())).is_err() {
        tracing::error!("commit listener panicked at the end of a batch");
    }
}

struct Thread {
    conn: Connection,
    queue: mpsc::Receiver<Job>,
    listener: Option<Arc<dyn CommitListener>>,
    stats: Arc<StatsCell>,
    max_batch: usize,
    commit_delay: std::time::Duration,
    /// `WriterConfig::account_storage_bytes`.
    quota: u64,
    /// The WAL's length as the checkpointer last saw it.
    wal_frames: Arc<std::sync::atomic::AtomicI64>,
}

impl Thread {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut previous = 0;
        // Sleeps until a request arrives, then takes whatever else is
        // already waiting: under load batches grow by themselves, and a lone
        // request is never held back waiting for company. Only right after a
        // busy batch does it wait `commit_delay` first (PostgreSQL's
        // commit_delay with commit_siblings, in effect).
        while let Some(job) = self.queue.blocking_recv() {
            batch.push(job);
            if previous >= BUSY_BATCH && !self.commit_delay.is_zero() {
                std::thread::sleep(self.commit_delay);
            }
            while batch.len() < self.max_batch {
                match self.queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            previous = batch.len();
            self.commit(&mut batch);
        }
        tracing::debug!("event writer stopped");
    }

    fn commit(&mut self, batch: &mut Vec<Job>) {
        let size = batch.len();
        match apply_batch(&mut self.conn, batch, now_millis(), self.quota) {
            Ok(()) => {
                self.stats.committed(size);
                // Every event of the batch is announced before any caller
                // hears its answer, so no reply overtakes its own event.
                if let Some(listener) = self.listener.as_deref() {
                    let mut announced = false;
                    for job in batch.iter() {
                        announced |= job.announce(listener);
                    }
                    if announced {
                        finish_batch(listener);
                    }
                }
                for job in batch.drain(..) {
                    job.answer();
                }
                // Its fsync of the database file delays the next batch by tens
                // of milliseconds, every 256 MiB of WAL (waiting for an idle
                // moment measured worse: the WAL then grew and reads slowed).
                if self.wal_frames.load(Ordering::Relaxed) > WAL_RESTART_FRAMES {
                    // Answered already: only a later batch waits for this.
                    // Busy (the checkpointer is at it) is fine: next time.
                    if passive_checkpoint(&self.conn).is_ok() {
                        self.wal_frames.store(0, Ordering::Relaxed);
                    }
                }
            }
            Err(e) => {
                self.stats
                    .failed_transactions
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, requests = size, "event batch failed; nothing of it was stored");
                for job in batch.drain(..) {
                    job.fail();
                }
            }
        }
    }
}

/// One transaction for the whole batch, one savepoint per request that
/// may be refused after it wrote something.
fn apply_batch(
    conn: &mut Connection,
    batch: &mut [Job],
    at: Millis,
    quota: u64,
) -> Result<(), StorageError> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in batch.iter_mut() {
        if job.refused_before_writing() {
            // Nothing to undo when refused; a savepoint would only make
            // SQLite copy every page the batch already changed into its
            // statement journal.
            job.apply(&tx, at, quota)?;
            continue;
        }
        let savepoint = tx.savepoint()?;
        if job.apply(&savepoint, at, quota)? {
            savepoint.commit()?;
        } else {
            // Refused: undo whatever the request did before it was refused.
            savepoint.finish()?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn union(a: &[UserId], b: &[UserId]) -> Vec<UserId> {
    let mut all: Vec<UserId> = a.iter().chain(b).copied().collect();
    all.sort_unstable();
    all.dedup();
    all
}

fn member_of(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
) -> Result<(chats::ChatRecord, Membership), Fail> {
    match chats::access(conn, chat_id, user)? {
        Access::NoSuchChat => Err(WriteError::ChatNotFound.into()),
        Access::NotAMember => Err(WriteError::NotAMember.into()),
        Access::Member(chat, me) => Ok((chat, me)),
    }
}

fn require_group(chat: &chats::ChatRecord) -> Result<(), WriteError> {
    if chat.kind == ChatKind::Group {
        Ok(())
    } else {
        Err(WriteError::DirectChat)
    }
}

fn require_role(me: &Membership, role: Role) -> Result<(), WriteError> {
    if me.role >= role {
        Ok(())
    } else {
        Err(WriteError::RoleRequired(role))
    }
}

/// The envelope must be sealed for exactly the current members (both lists
/// sorted by user id).
fn check_wraps(envelope: &Envelope, members: &[UserId]) -> Result<(), WriteError> {
    let wrapped = envelope.wraps.iter().map(|wrap| wrap.user_id);
    if wrapped.eq(members.iter().copied()) {
        Ok(())
    } else {
        Err(WriteError::MembersChanged)
    }
}

/// The message at `seq` as `me` may see it: a message event, not deleted,
/// not older than their membership.
fn visible_message(
    conn: &Connection,
    chat_id: ChatId,
    me: &Membership,
    seq: Seq,
) -> Result<ChatEvent, Fail> {
    match events::by_seq(conn, chat_id, seq)? {
        Some(
            event @ ChatEvent {
                body: EventBody::Message { .. },
                ..
            },
        ) if seq >= me.joined_seq => Ok(event),
        _ => Err(WriteError::MessageNotFound.into()),
    }
}

fn ids(members: &[Membership]) -> Vec<UserId> {
    members.iter().map(|m| m.user_id).collect()
}

fn stored(events: Vec<ChatEvent>, members: Vec<UserId>) -> Appended {
    Appended {
        events,
        duplicate: false,
        members,
        added: Vec::new(),
        removed: Vec::new(),
        invited: Vec::new(),
    }
}

fn duplicate(event: ChatEvent, members: Vec<UserId>) -> Appended {
    Appended {
        duplicate: true,
        ..stored(vec![event], members)
    }
}

/// Counts `bytes` more of stored messages for `user`, or refuses them when
/// they would take the account past `quota` (0: no limit). Reads before it
/// writes, so a refusal leaves nothing to undo.
fn charge_storage(conn: &Connection, user: UserId, bytes: usize, quota: u64) -> Result<(), Fail> {
    use rusqlite::OptionalExtension;
    let bytes = bytes as i64;
    if quota > 0 {
        let stored: i64 = conn
            .prepare_cached("SELECT stored_bytes FROM account_storage WHERE user_id = ?1")?
            .query_row([user.0], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        if stored.saturating_add(bytes) as u64 > quota {
            return Err(WriteError::QuotaExceeded { quota }.into());
        }
    }
    conn.prepare_cached(
        "INSERT INTO account_storage (user_id, stored_bytes) VALUES (?1, ?2) \
         ON CONFLICT (user_id) DO UPDATE SET stored_bytes = stored_bytes + excluded.stored_bytes",
    )?
    .execute(rusqlite::params![user.0, bytes])?;
    Ok(())
}

fn apply_change(
    conn: &Connection,
    request: AppendRequest,
    at: Millis,
    quota: u64,
) -> Result<Appended, Fail> {
    let AppendRequest {
        chat_id,
        sender,
        change,
    } = request;
    if let Change::AcceptInvitation { max_members } = change {
        return accept_invitation(conn, chat_id, sender, max_members, at);
    }
    let (chat, me) = member_of(conn, chat_id, sender)?;
    let append = |body: EventBody| events::append(conn, chat_id, sender, at, body);
    match change {
        Change::Message {
            client_msg_id,
            envelope,
        } => {
            let members = chats::member_ids(conn, chat_id)?;
            if let Some(existing) = events::by_client_msg_id(conn, chat_id, sender, &client_msg_id)?
            {
                return match existing.body {
                    EventBody::Message { .. } => Ok(duplicate(existing, members)),
                    _ => Err(WriteError::ClientMsgIdReused.into()),
                };
            }
            check_wraps(&envelope, &members)?;
            let body = events::prepare(EventBody::Message {
                client_msg_id,
                envelope,
            })?;
            charge_storage(conn, sender, body.stored_len(), quota)?;
            let event = events::append_prepared(conn, chat_id, sender, at, body)?;
            Ok(stored(vec![event], members))
        }
        Change::Edit {
            target_seq,
            envelope,
        } => {
            let members = chats::member_ids(conn, chat_id)?;
            let id = &envelope.header.client_msg_id;
            if let Some(existing) = events::by_client_msg_id(conn, chat_id, sender, id)? {
                return match existing.body {
                    EventBody::Edit { target_seq: t, .. } if t == target_seq => {
                        Ok(duplicate(existing, members))
                    }
                    _ => Err(WriteError::ClientMsgIdReused.into()),
                };
            }
            let target = visible_message(conn, chat_id, &me, target_seq)?;
            if target.sender != sender {
                return Err(WriteError::NotMessageAuthor.into());
            }
            if events::deletion_of(conn, chat_id, target_seq)?.is_some() {
                return Err(WriteError::MessageNotFound.into());
            }
            check_wraps(&envelope, &members)?;
            let body = events::prepare(EventBody::Edit {
                target_seq,
                envelope,
            })?;
            charge_storage(conn, sender, body.stored_len(), quota)?;
            let event = events::append_prepared(conn, chat_id, sender, at, body)?;
            Ok(stored(vec![event], members))
        }
        Change::Delete { target_seq } => {
            let members = chats::member_ids(conn, chat_id)?;
            let target = visible_message(conn, chat_id, &me, target_seq)?;
            if target.sender != sender {
                return Err(WriteError::NotMessageAuthor.into());
            }
            // Deleting again (a retry) answers with the first deletion.
            if let Some(deletion) = events::deletion_of(conn, chat_id, target_seq)? {
                return Ok(duplicate(deletion, members));
            }
            let event = append(EventBody::Delete { target_seq })?;
            Ok(stored(vec![event], members))
        }
        Change::AddMembers {
            user_ids,
            max_members,
            invitations,
        } => {
            require_group(&chat)?;
            require_role(&me, Role::Admin)?;
            let before = chats::member_ids(conn, chat_id)?;
            let mut named = user_ids;
            named.sort_unstable();
            named.dedup();
            if let Some(member) = named.iter().find(|u| before.binary_search(u).is_ok()) {
                return Err(WriteError::AlreadyMember(*member).into());
            }
            // Counts every named id, invitees and unknown ids alike, so the
            // refusal does not tell them apart.
            if before.len() + named.len() > max_members {
                return Err(WriteError::TooManyMembers { max: max_members }.into());
            }
            let (new, invited) = consent(conn, sender, &named)?;
            for user in &invited {
                invitations::invite(conn, chat_id, *user, sender, at, invitations)?;
            }
            let mut events = Vec::new();
            if !new.is_empty() {
                let event = append(EventBody::MembersAdded {
                    user_ids: new.clone(),
                })?;
                for user in &new {
                    chats::insert_member(conn, chat_id, *user, Role::Member, at, event.seq)?;
                }
                invitations::remove_for(conn, chat_id, &new)?;
                events.push(event);
            }
            Ok(Appended {
                members: union(&before, &new),
                added: new,
                invited,
                ..stored(events, Vec::new())
            })
        }
        Change::AcceptInvitation { .. } => Err(WriteError::AlreadyMember(sender).into()),
        Change::RemoveMember { user_id } => {
            require_group(&chat)?;
            require_role(&me, Role::Admin)?;
            if user_id == sender {
                return Err(WriteError::CannotTargetSelf.into());
            }
            let target =
                chats::membership(conn, chat_id, user_id)?.ok_or(WriteError::NotMember(user_id))?;
            if target.role >= me.role {
                return Err(WriteError::Outranked.into());
            }
            let event = append(EventBody::MemberRemoved { user_id })?;
            chats::delete_member(conn, chat_id, user_id)?;
            Ok(Appended {
                removed: vec![user_id],
                ..stored(vec![event], chats::member_ids(conn, chat_id)?)
            })
        }
        Change::Leave => {
            require_group(&chat)?;
            if me.role == Role::Owner && chats::member_count(conn, chat_id)? > 1 {
                return Err(WriteError::OwnerMustTransfer.into());
            }
            let event = append(EventBody::MemberLeft { user_id: sender })?;
            chats::delete_member(conn, chat_id, sender)?;
            Ok(Appended {
                removed: vec![sender],
                ..stored(vec![event], chats::member_ids(conn, chat_id)?)
            })
        }
        Change::Rename { title } => {
            require_group(&chat)?;
            require_role(&me, Role::Admin)?;
            chats::set_title(conn, chat_id, &title)?;
            let event = append(EventBody::Renamed { title })?;
            Ok(stored(vec![event], chats::member_ids(conn, chat_id)?))
        }
        Change::SetRole { user_id, role } => {
            require_group(&chat)?;
            require_role(&me, Role::Owner)?;
            if role == Role::Owner {
                return Err(WriteError::InvalidRole.into());
            }
            if user_id == sender {
                return Err(WriteError::CannotTargetSelf.into());
            }
            if chats::membership(conn, chat_id, user_id)?.is_none() {
                return Err(WriteError::NotMember(user_id).into());
            }
            chats::set_role(conn, chat_id, user_id, role)?;
            let event = append(EventBody::RoleChanged { user_id, role })?;
            Ok(stored(vec![event], chats::member_ids(conn, chat_id)?))
        }
        Change::TransferOwnership { user_id } => {
            require_group(&chat)?;
            require_role(&me, Role::Owner)?;
            if user_id == sender {
                return Err(WriteError::CannotTargetSelf.into());
            }
            if chats::membership(conn, chat_id, user_id)?.is_none() {
                return Err(WriteError::NotMember(user_id).into());
            }
            chats::set_role(conn, chat_id, user_id, Role::Owner)?;
            chats::set_role(conn, chat_id, sender, Role::Admin)?;
            let promoted = append(EventBody::RoleChanged {
                user_id,
                role: Role::Owner,
            })?;
            let demoted = append(EventBody::RoleChanged {
                user_id: sender,
                role: Role::Admin,
            })?;
            Ok(stored(
                vec![promoted, demoted],
                chats::member_ids(conn, chat_id)?,
            ))
        }
        Change::AccountDeleted => {
            let left = append(EventBody::MemberLeft { user_id: sender })?;
            chats::delete_member(conn, chat_id, sender)?;
            let remaining = chats::memberships(conn, chat_id)?;
            let mut events = vec![left];
            if me.role == Role::Owner {
                let successor = remaining
                    .iter()
                    .max_by_key(|m| (m.role, std::cmp::Reverse((m.joined_seq, m.user_id))));
                if let Some(successor) = successor {
                    chats::set_role(conn, chat_id, successor.user_id, Role::Owner)?;
                    events.push(append(EventBody::RoleChanged {
                        user_id: successor.user_id,
                        role: Role::Owner,
                    })?);
                }
            }
            Ok(Appended {
                removed: vec![sender],
                ..stored(events, ids(&remaining))
            })
        }
    }
}

/// Splits the users `adder` names (sorted, no duplicates) into those who
/// become members and those who are invited, by each one's privacy setting.
/// Ids without an account are in neither.
fn consent(
    conn: &Connection,
    adder: UserId,
    named: &[UserId],
) -> Result<(Vec<UserId>, Vec<UserId>), StorageError> {
    let mut members = Vec::new();
    let mut invited = Vec::new();
    for user in named {
        let Some(policy) = invitations::policy(conn, *user)? else {
            continue;
        };
        if *user == adder || invitations::may_add_directly(conn, adder, *user, policy)? {
            members.push(*user);
        } else {
            invited.push(*user);
        }
    }
    Ok((members, invited))
}

/// `sender` takes up their invitation: a member from now on.
fn accept_invitation(
    conn: &Connection,
    chat_id: ChatId,
    sender: UserId,
    max_members: usize,
    at: Millis,
) -> Result<Appended, Fail> {
    if !invitations::remove(conn, chat_id, sender, at)? {
        return Err(WriteError::NoInvitation.into());
    }
    let chat = chats::by_id(conn, chat_id)?.ok_or(WriteError::NoInvitation)?;
    require_group(&chat)?;
    let before = chats::member_ids(conn, chat_id)?;
    if before.binary_search(&sender).is_ok() {
        return Err(WriteError::AlreadyMember(sender).into());
    }
    if before.len() >= max_members {
        return Err(WriteError::TooManyMembers { max: max_members }.into());
    }
    let event = events::append(
        conn,
        chat_id,
        sender,
        at,
        EventBody::MembersAdded {
            user_ids: vec![sender],
        },
    )?;
    chats::insert_member(conn, chat_id, sender, Role::Member, at, event.seq)?;
    Ok(Appended {
        members: union(&before, &[sender]),
        added: vec![sender],
        ..stored(vec![event], Vec::new())
    })
}

/// [`EventWriter::delete_account`] inside the transaction.
fn delete_account(conn: &Connection, user: UserId, at: Millis) -> Result<Vec<Appended>, Fail> {
    let mut departures = Vec::new();
    for chat_id in chats::chat_ids_for_user(conn, user)? {
        departures.push(apply_change(
            conn,
            AppendRequest {
                chat_id,
                sender: user,
                change: Change::AccountDeleted,
            },
            at,
            // A departure stores no message body: no quota to check.
            0,
        )?);
    }
    if !users::delete(conn, user)? {
        return Err(WriteError::UserNotFound(user).into());
    }
    Ok(departures)
}

fn create_chat(conn: &Connection, chat: NewChat, at: Millis) -> Result<Created, Fail> {
    match chat {
        NewChat::Direct { creator, peer } => {
            if creator == peer {
                return Err(WriteError::CannotTargetSelf.into());
            }
            if let Some(unknown) = chats::unknown_users(conn, &[peer, creator])?.first() {
                return Err(WriteError::UserNotFound(*unknown).into());
            }
            if let Some(chat_id) = chats::direct_between(conn, creator, peer)? {
                return Ok(Created {
                    chat_id,
                    event: None,
                    members: chats::member_ids(conn, chat_id)?,
                    invited: Vec::new(),
                });
            }
            let members = union(&[creator], &[peer]);
            let chat_id = chats::insert_chat(conn, ChatKind::Direct, None, at)?;
            chats::insert_direct_pair(conn, creator, peer, chat_id)?;
            let event = events::append(
                conn,
                chat_id,
                creator,
                at,
                EventBody::Created {
                    title: None,
                    members: members.clone(),
                },
            )?;
            for user in &members {
                chats::insert_member(conn, chat_id, *user, Role::Member, at, event.seq)?;
            }
            Ok(Created {
                chat_id,
                event: Some(event),
                members,
                invited: Vec::new(),
            })
        }
        NewChat::Group {
            creator,
            title,
            members,
            max_members,
            invitations,
        } => {
            let named = union(&[creator], &members);
            // Counts every named id (see `Change::AddMembers`).
            if named.len() > max_members {
                return Err(WriteError::TooManyMembers { max: max_members }.into());
            }
            // The creator's own account may have been deleted a moment ago.
            if !chats::unknown_users(conn, &[creator])?.is_empty() {
                return Err(WriteError::UserNotFound(creator).into());
            }
            let (members, invited) = consent(conn, creator, &named)?;
            let chat_id = chats::insert_chat(conn, ChatKind::Group, Some(&title), at)?;
            let event = events::append(
                conn,
                chat_id,
                creator,
                at,
                EventBody::Created {
                    title: Some(title),
                    members: members.clone(),
                },
            )?;
            for user in &members {
                let role = if *user == creator {
                    Role::Owner
                } else {
                    Role::Member
                };
                chats::insert_member(conn, chat_id, *user, role, at, event.seq)?;
            }
            for user in &invited {
                invitations::invite(conn, chat_id, *user, creator, at, invitations)?;
            }
            Ok(Created {
                chat_id,
                event: Some(event),
                members,
                invited,
            })
        }
    }
}

fn mark(
    conn: &Connection,
    receipt: Receipt,
    chat_id: ChatId,
    user: UserId,
    seq: Seq,
) -> Result<PositionMark, Fail> {
    let (chat, _) = member_of(conn, chat_id, user)?;
    // Nobody reads or receives the future: cap at the last stored event.
    let (was, now) = chats::advance(conn, chat_id, user, receipt, seq.min(chat.last_seq))?;
    let notify = match (now > was, receipt) {
        (false, _) => Vec::new(),
        (true, Receipt::Read) => chats::member_ids(conn, chat_id)?,
        (true, Receipt::Delivered) => {
            let mut users = events::message_senders(conn, chat_id, was, now)?;
            users.retain(|u| *u != user);
            users.push(user);
            users.sort_unstable();
            users
        }
    };
    Ok(PositionMark {
        seq: now,
        moved: now > was,
        notify,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_support::temp_storage;
    use crate::users;
    use ferrogram_core::b64::B64;
    use ferrogram_core::proto::{EnvelopeHeader, GroupAddPolicy, KeyWrap, ENVELOPE_VERSION};
    use std::sync::Mutex;

    /// An envelope with the right shape for the writer's checks; its bytes
    /// are zeros (the writer never looks at them).
    pub(crate) fn envelope(
        chat_id: ChatId,
        sender: UserId,
        id: &str,
        members: &[UserId],
    ) -> Envelope {
        let mut members = members.to_vec();
        members.sort_unstable();
        Envelope {
            version: ENVELOPE_VERSION,
            header: EnvelopeHeader {
                chat_id,
                sender,
                client_msg_id: id.to_owned(),
                sent_at: 1,
            },
            sender_key: B64(vec![0; 32]),
            nonce: B64(vec![0; 12]),
            body: B64(vec![0; 32]),
            wraps: members
                .into_iter()
                .map(|user_id| KeyWrap {
                    user_id,
                    key_id: B64(vec![0; 32]),
                    wrapped_key: B64(vec![0; 384]),
                })
                .collect(),
            signature: B64(vec![0; 384]),
            wrap_proof: None,
        }
    }

    pub(crate) fn message(
        chat_id: ChatId,
        sender: UserId,
        id: &str,
        members: &[UserId],
    ) -> AppendRequest {
        AppendRequest {
            chat_id,
            sender,
            change: Change::Message {
                client_msg_id: id.to_owned(),
                envelope: envelope(chat_id, sender, id, members),
            },
        }
    }

    pub(crate) fn change(chat_id: ChatId, sender: UserId, change: Change) -> AppendRequest {
        AppendRequest {
            chat_id,
            sender,
            change,
        }
    }

    /// `n` accounts named user0, user1, ..., that anyone may add to a group.
    pub(crate) fn add_users(storage: &Storage, n: usize) -> Vec<UserId> {
        storage
            .with_conn(|conn| {
                (0..n)
                    .map(|i| {
                        let id = users::insert(
                            conn,
                            &users::tests::new_user(&format!("u{i}@x.org"), &format!("user{i}")),
                        )?;
                        set_policy(conn, id, GroupAddPolicy::Everyone)?;
                        Ok(id)
                    })
                    .collect::<Result<Vec<_>, StorageError>>()
            })
            .unwrap()
    }

    pub(crate) fn set_policy(
        conn: &Connection,
        user: UserId,
        policy: GroupAddPolicy,
    ) -> Result<(), StorageError> {
        let update = users::ProfileUpdate {
            who_can_add_me: Some(policy),
            ..users::ProfileUpdate::default()
        };
        users::update_profile(conn, user, &update, 1)?;
        Ok(())
    }

    pub(crate) async fn group(writer: &EventWriter, creator: UserId, members: &[UserId]) -> ChatId {
        writer
            .create_chat(NewChat::Group {
                creator,
                title: "team".into(),
                members: members.to_vec(),
                max_members: 1000,
                invitations: InvitationLimits::default(),
            })
            .await
            .unwrap()
            .chat_id
    }

    fn stored_seqs(storage: &Storage, chat_id: ChatId) -> Vec<Seq> {
        storage
            .with_conn(|conn| {
                let mut stmt =
                    conn.prepare("SELECT seq FROM chat_events WHERE chat_id = ?1 ORDER BY seq")?;
                let seqs = stmt.query_map([chat_id.0], |r| r.get(0))?;
                Ok::<_, StorageError>(seqs.collect::<Result<Vec<Seq>, _>>()?)
            })
            .unwrap()
    }

    /// Waits until `n` requests are queued behind a closed gate.
    async fn queued(writer: &EventWriter, n: usize) {
        for _ in 0..500 {
            if writer.queued() >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!("only {} of {n} requests queued", writer.queued());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn seqs_strictly_increase_without_gaps_under_concurrent_appends() {
        let (_dir, storage) = temp_storage();
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let users = add_users(&storage, 3);
        let chat = group(&writer, users[0], &users).await;
        let mut tasks = Vec::new();
        for task in 0..20 {
            let writer = writer.clone();
            let users = users.clone();
            tasks.push(tokio::spawn(async move {
                let sender = users[task % 3];
                let mut seqs = Vec::new();
                for n in 0..25 {
                    let id = format!("t{task}-m{n}");
                    let done = writer
                        .append(message(chat, sender, &id, &users))
                        .await
                        .unwrap();
                    assert!(!done.duplicate);
                    seqs.push(done.event().seq);
                }
                seqs
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            let seqs = task.await.unwrap();
            // each task's own messages come out in the order it sent them
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
            all.extend(seqs);
        }
        all.sort_unstable();
        // seq 1 is the `created` event
        assert_eq!(all, (2..=501).collect::<Vec<_>>());
        assert_eq!(stored_seqs(&storage, chat), (1..=501).collect::<Vec<_>>());
        let last_seq = storage
            .with_conn(|conn| chats::by_id(conn, chat))
            .unwrap()
            .unwrap()
            .last_seq;
        assert_eq!(last_seq, 501);
        let stats = writer.stats();
        assert_eq!(stats.requests, 501);
        assert!(stats.transactions <= 501);
        assert_eq!(stats.batch_sizes.iter().sum::<u64>(), stats.transactions);
    }

    fn stored_bytes(storage: &Storage, user: UserId) -> u64 {
        storage
            .with_conn(|conn| {
                Ok::<_, StorageError>(
                    conn.query_row(
                        "SELECT stored_bytes FROM account_storage WHERE user_id = ?1",
                        [user.0],
                        |r| r.get::<_, i64>(0),
                    )
                    .unwrap_or(0) as u64,
                )
            })
            .unwrap()
    }

    #[tokio::test]
    async fn sends_past_the_storage_quota_are_refused() {
        let (_dir, storage) = temp_storage();
        let users = add_users(&storage, 2);
        // Ids of one length: every envelope stores as many bytes.
        let size = envelope(ChatId(1), users[0], "m0", &users)
            .to_stored()
            .unwrap()
            .len() as u64;
        let quota = 3 * size;
        let config = WriterConfig {
            account_storage_bytes: quota,
            ..WriterConfig::default()
        };
        let writer = EventWriter::start(&storage, config, None).unwrap();
        let chat = group(&writer, users[0], &users).await;
        let before = stored_seqs(&storage, chat).len();
        let mut seqs = Vec::new();
        for n in 0..3 {
            let sent = writer
                .append(message(chat, users[0], &format!("m{n}"), &users))
                .await
                .unwrap();
            seqs.push(sent.event().seq);
        }
        assert_eq!(stored_bytes(&storage, users[0]), quota);
        let refused = writer
            .append(message(chat, users[0], "m3", &users))
            .await
            .unwrap_err();
        assert_eq!(refused, WriteError::QuotaExceeded { quota });
        // Edits count too.
        let edit = Change::Edit {
            target_seq: seqs[0],
            envelope: envelope(chat, users[0], "e0", &users),
        };
        let refused = writer
            .append(change(chat, users[0], edit))
            .await
            .unwrap_err();
        assert_eq!(refused, WriteError::QuotaExceeded { quota });
        // A retry of a stored message is still answered, and not charged.
        let again = writer
            .append(message(chat, users[0], "m0", &users))
            .await
            .unwrap();
        assert!(again.duplicate);
        // Another account has its own quota.
        writer
            .append(message(chat, users[1], "m0", &users))
            .await
            .unwrap();
        assert_eq!(stored_bytes(&storage, users[0]), quota);
        assert_eq!(stored_bytes(&storage, users[1]), size);
        assert_eq!(
            stored_seqs(&storage, chat).len(),
            before + 4,
            "three messages and the other's one, nothing of the refused"
        );
    }

    #[tokio::test]
    async fn without_a_quota_bytes_are_still_counted() {
        let (_dir, storage) = temp_storage();
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let users = add_users(&storage, 2);
        let chat = group(&writer, users[0], &users).await;
        for n in 0..5 {
            writer
                .append(message(chat, users[1], &format!("m{n}"), &users))
                .await
                .unwrap();
        }
        let size = envelope(chat, users[1], "m0", &users)
            .to_stored()
            .unwrap()
            .len() as u64;
        assert_eq!(stored_bytes(&storage, users[1]), 5 * size);
    }

    #[tokio::test]
    async fn a_duplicate_client_msg_id_is_stored_once() {
        let (_dir, storage) = temp_storage();
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let users = add_users(&storage, 2);
        let chat = group(&writer, users[0], &users).await;
        let first = writer
            .append(message(chat, users[0], "same", &users))
            .await
            .unwrap();
        let again = writer
            .append(message(chat, users[0], "same", &users))
            .await
            .unwrap();
        assert!(!first.duplicate);
        assert!(again.duplicate);
        assert_eq!(again.event(), first.event());
        // twice in one batch: the second finds the first
        let (a, b) = tokio::join!(
            writer.append(message(chat, users[1], "twin", &users)),
            writer.append(message(chat, users[1], "twin", &users)),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.event().seq, b.event().seq);
        assert!(a.duplicate != b.duplicate);
        // the same id from another sender is another message
        let other = writer
            .append(message(chat, users[1], "same", &users))
            .await
            .unwrap();
        assert!(!other.duplicate);
        assert_eq!(stored_seqs(&storage, chat), [1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_batch_of_100_commits_in_one_transaction() {
        let (_dir, storage) = temp_storage();
        let setup = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let users = add_users(&storage, 2);
        let chat = group(&setup, users[0], &users).await;

        let (open, gate) = std::sync::mpsc::channel();
        let writer = EventWriter::start_gated(&storage, WriterConfig::default(), gate).unwrap();
        let tasks: Vec<_> = (0..100)
            .map(|n| {
                let writer = writer.clone();
                let users = users.clone();
                tokio::spawn(async move {
                    writer
                        .append(message(chat, users[n % 2], &format!("m{n}"), &users))
                        .await
                })
            })
            .collect();
        queued(&writer, 100).await;
        open.send(()).unwrap();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let stats = writer.stats();
        assert_eq!(stats.transactions, 1);
        assert_eq!(stats.requests, 100);
        assert_eq!(stats.largest_batch, 100);
        assert_eq!(stats.batch_sizes[6], 1, "64..=127: {stats:?}");
        assert!((stats.mean_batch() - 100.0).abs() < f64::EPSILON);
        assert_eq!(stored_seqs(&storage, chat), (1..=101).collect::<Vec<_>>());
    }

    /// Appends message `id` from a member (alternating by id) in a task.
    fn spawn_append(
        writer: &EventWriter,
        chat: ChatId,
        users: &[UserId],
        id: String,
    ) -> tokio::task::JoinHandle<Result<Appended, WriteError>> {
        let (writer, users) = (writer.clone(), users.to_vec());
        tokio::spawn(async move {
            let sender = users[id.len() % users.len()];
            writer.append(message(chat, sender, &id, &users)).await
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_busy_batch_the_writer_waits_for_company_and_never_when_idle() {
        let (_dir, storage) = temp_storage();
        let setup = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let users = add_users(&storage, 2);
        let chat = group(&setup, users[0], &users).await;
        let delay = std::time::Duration::from_millis(300);
        let (open, gate) = std::sync::mpsc::channel();
        let config = WriterConfig {
            commit_delay: delay,
            ..WriterConfig::default()
        };
        let writer = EventWriter::start_gated(&storage, config, gate).unwrap();
        let send = |n: usize| spawn_append(&writer, chat, &users, format!("m{n}"));

        // An idle writer answers a lone request at once.
        let started = std::time::Instant::now();
        open.send(()).unwrap();
        send(0).await.unwrap().unwrap();
        assert!(started.elapsed() < delay, "{:?}", started.elapsed());

        // A busy batch (BUSY_BATCH requests at once) ...
        let (open2, gate2) = std::sync::mpsc::channel();
        drop(writer);
        let writer = EventWriter::start_gated(&storage, config, gate2).unwrap();
        let send = |n: usize| spawn_append(&writer, chat, &users, format!("b{n}"));
        let busy: Vec<_> = (0..BUSY_BATCH).map(send).collect();
        queued(&writer, BUSY_BATCH).await;
        open2.send(()).unwrap();
        for task in busy {
            task.await.unwrap().unwrap();
        }
        // ... then the next request waits: requests sent while the writer
        // holds it (a third of the delay later) share its transaction.
        let first = send(100);
        tokio::time::sleep(delay / 3).await;
        let later: Vec<_> = (101..106).map(send).collect();
        first.await.unwrap().unwrap();
        for task in later {
            task.await.unwrap().unwrap();
        }
        let stats = writer.stats();
        assert_eq!(stats.transactions, 2, "{stats:?}");
        assert_eq!(stats.requests, BUSY_BATCH as u64 + 6, "{stats:?}");
    }

    #[tokio::test]
    async fn batches_never_exceed_max_batch() {
        let (_dir, storage) = temp_storage();
        let setup = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let users = add_users(&storage, 1);
        let chat = group(&setup, users[0], &users).await;
        let (open, gate) = std::sync::mpsc::channel();
        let config = WriterConfig {
            max_batch: 8,
            queue_capacity: 64,
            ..WriterConfig::default()
        };
        let writer = EventWriter::start_gated(&storage, config, gate).unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|n| {
                let writer = writer.clone();
                let users = users.clone();
                tokio::spawn(async move {
                    writer
                        .append(message(chat, users[0], &format!("m{n}"), &users))
                        .await
                })
            })
            .collect();
        queued(&writer, 20).await;
        drop(open);
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let stats = writer.stats();
        assert_eq!(stats.largest_batch, 8);
        assert_eq!(stats.transactions, 3);
    }

    #[tokio::test]
    async fn an_acknowledged_event_is_visible_to_a_fresh_connection() {
        let (_dir, storage) = temp_storage();
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let users = add_users(&storage, 2);
        let chat = group(&writer, users[0], &users).await;
        let done = writer
            .append(message(chat, users[1], "durable", &users))
            .await
            .unwrap();
        // not the pool, not the writer's connection: a new one, as after a restart
        let conn = Connection::open(storage.path()).unwrap();
        let stored = events::by_seq(&conn, chat, done.event().seq)
            .unwrap()
            .unwrap();
        assert_eq!(&stored, done.event());
        let sync: i64 = storage
            .with_conn(|c| {
                Ok::<_, StorageError>(c.pragma_query_value(None, "synchronous", |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    #[tokio::test]
    async fn a_refused_request_does_not_disturb_its_batch() {
        let (_dir, storage) = temp_storage();
        let setup = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let users = add_users(&storage, 3);
        let members = &users[..2];
        let chat = group(&setup, users[0], members).await;
        let (open, gate) = std::sync::mpsc::channel();
        let writer = EventWriter::start_gated(&storage, WriterConfig::default(), gate).unwrap();
        let requests = [
            message(chat, users[0], "ok-1", members),
            message(chat, users[2], "outsider", &users),
            message(chat, users[1], "missing-wrap", &users[..1]),
            message(chat, users[1], "ok-2", members),
        ];
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|request| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.append(request).await })
            })
            .collect();
        queued(&writer, 4).await;
        open.send(()).unwrap();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap().map(|done| done.event().seq));
        }
        assert_eq!(
            results,
            [
                Ok(2),
                Err(WriteError::NotAMember),
                Err(WriteError::MembersChanged),
                Ok(3)
            ]
        );
        assert_eq!(writer.stats().transactions, 1);
        assert_eq!(stored_seqs(&storage, chat), [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_failed_batch_stores_nothing_and_fails_every_request() {
        let (_dir, storage) = temp_storage();
        let setup = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let users = add_users(&storage, 1);
        let chat = group(&setup, users[0], &users).await;
        // A statement that fails in the middle of the batch, as a full disk would.
        storage
            .with_conn(|conn| {
                conn.execute_batch(
                    "CREATE TRIGGER boom BEFORE INSERT ON chat_events \
                     WHEN NEW.client_msg_id = 'boom' BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
                )?;
                Ok::<_, StorageError>(())
            })
            .unwrap();
        let (open, gate) = std::sync::mpsc::channel();
        let writer = EventWriter::start_gated(&storage, WriterConfig::default(), gate).unwrap();
        let tasks: Vec<_> = ["a", "boom", "c"]
            .into_iter()
            .map(|id| {
                let writer = writer.clone();
                let users = users.clone();
                tokio::spawn(
                    async move { writer.append(message(chat, users[0], id, &users)).await },
                )
            })
            .collect();
        queued(&writer, 3).await;
        open.send(()).unwrap();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Err(WriteError::Failed));
        }
        assert_eq!(stored_seqs(&storage, chat), [1]);
        let stats = writer.stats();
        assert_eq!((stats.transactions, stats.failed_transactions), (0, 1));
        // the writer carries on, and the seq has no gap
        let done = writer
            .append(message(chat, users[0], "after", &users))
            .await
            .unwrap();
        assert_eq!(done.event().seq, 2);
    }

    #[tokio::test]
    async fn a_removed_member_cannot_append() {
        let (_dir, storage) = temp_storage();
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let users = add_users(&storage, 3);
        let chat = group(&writer, users[0], &users).await;
        let removed = writer
            .append(change(
                chat,
                users[0],
                Change::RemoveMember { user_id: users[2] },
            ))
            .await
            .unwrap();
        assert_eq!(removed.removed, [users[2]]);
        assert_eq!(removed.members, &users[..2]);
        assert_eq!(
            writer.append(message(chat, users[2], "late", &users)).await,
            Err(WriteError::NotAMember)
        );
        // wraps for the old member list no longer fit
        assert_eq!(
            writer
                .append(message(chat, users[1], "stale", &users))
                .await,
            Err(WriteError::MembersChanged)
        );
        assert_eq!(
            writer.mark_read(chat, users[2], 1).await,
            Err(WriteError::NotAMember)
        );
        assert_eq!(
            writer
                .append(message(ChatId(999), users[0], "x", &users))
                .await,
            Err(WriteError::ChatNotFound)
        );
    }

    #[derive(Default)]
    struct Recorder {
        path: std::path::PathBuf,
        seen: Mutex<Vec<(Seq, Vec<UserId>, bool)>>,
    }

    impl CommitListener for Recorder {
        fn committed(&self, event: &ChatEvent, recipients: &[UserId]) {
            // committed means: another connection can read it already
            let conn = Connection::open(&self.path).unwrap();
            let visible = events::by_seq(&conn, event.chat_id, event.seq)
                .unwrap()
                .is_some();
            self.seen
                .lock()
                .unwrap()
                .push((event.seq, recipients.to_vec(), visible));
        }
    }

    /// Logs what a listener hears and when callers get their answers.
    #[derive(Default)]
    struct BatchLog(Mutex<Vec<String>>);

    impl BatchLog {
        fn push(&self, line: String) {
            self.0.lock().unwrap().push(line);
        }
    }

    impl CommitListener for BatchLog {
        fn committed(&self, event: &ChatEvent, _: &[UserId]) {
            self.push(format!("event {}", event.seq));
        }

        fn batch_done(&self) {
            self.push("batch done".into());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_is_announced_whole_before_any_caller_is_answered() {
        let (_dir, storage) = temp_storage();
        let setup = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let users = add_users(&storage, 2);
        let chat = group(&setup, users[0], &users).await;

        let log = Arc::new(BatchLog::default());
        let (open, gate) = std::sync::mpsc::channel();
        let writer =
            EventWriter::start_gated_with(&storage, WriterConfig::default(), log.clone(), gate)
                .unwrap();
        let tasks: Vec<_> = (0..5)
            .map(|n| {
                let (writer, users, log) = (writer.clone(), users.clone(), log.clone());
                tokio::spawn(async move {
                    let done = writer
                        .append(message(chat, users[n % 2], &format!("m{n}"), &users))
                        .await
                        .unwrap();
                    log.push(format!("answered {}", done.event().seq));
                })
            })
            .collect();
        queued(&writer, 5).await;
        open.send(()).unwrap();
        for task in tasks {
            task.await.unwrap();
        }
        // a refused request and a duplicate: answered, nothing to announce
        writer
            .append(message(chat, users[0], "m0", &users))
            .await
            .unwrap();
        log.push("duplicate answered".into());

        let lines = log.0.lock().unwrap().clone();
        let expected_head: Vec<String> = (2..=6)
            .map(|seq| format!("event {seq}"))
            .chain(["batch done".to_owned()])
            .collect();
        assert_eq!(lines[..6], expected_head[..], "{lines:?}");
        let mut answered: Vec<&str> = lines[6..11].iter().map(String::as_str).collect();
        answered.sort_unstable();
        assert_eq!(
            answered,
            [
                "answered 2",
                "answered 3",
                "answered 4",
                "answered 5",
                "answered 6"
            ]
        );
        // the duplicate's batch announced nothing and so did not call batch_done
        assert_eq!(lines[11..], ["duplicate answered".to_owned()]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_listener_hears_each_event_after_its_commit_in_seq_order() {
        let (_dir, storage) = temp_storage();
        let recorder = Arc::new(Recorder {
            path: storage.path().to_path_buf(),
            ..Recorder::default()
        });
        let writer =
            EventWriter::start(&storage, WriterConfig::default(), Some(recorder.clone())).unwrap();
        let users = add_users(&storage, 3);
        let chat = group(&writer, users[0], &users[..2]).await;
        let tasks: Vec<_> = (0..40)
            .map(|n| {
                let writer = writer.clone();
                let members = users[..2].to_vec();
                tokio::spawn(async move {
                    writer
                        .append(message(chat, members[n % 2], &format!("m{n}"), &members))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // a duplicate is not announced again
        writer
            .append(message(chat, users[0], "m0", &users[..2]))
            .await
            .unwrap();
        writer
            .append(change(
                chat,
                users[0],
                Change::RemoveMember { user_id: users[1] },
            ))
            .await
            .unwrap();
        let seen = recorder.seen.lock().unwrap().clone();
        let seqs: Vec<Seq> = seen.iter().map(|(seq, _, _)| *seq).collect();
        assert_eq!(seqs, (1..=42).collect::<Vec<_>>());
        assert!(seen.iter().all(|(_, _, visible)| *visible));
        assert!(seen[..41].iter().all(|(_, to, _)| to == &users[..2]));
        // the removed member hears of the removal too
        assert_eq!(seen[41].1, &users[..2]);
    }

    #[tokio::test]
    async fn direct_chats_are_one_per_pair_and_fixed() {
        let (_dir, storage) = temp_storage();
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let users = add_users(&storage, 3);
        let first = writer
            .create_chat(NewChat::Direct {
                creator: users[0],
                peer: users[1],
            })
            .await
            .unwrap();
        assert!(first.event.is_some());
        assert_eq!(first.members, &users[..2]);
        // the other way round finds the same chat, without a new event
        let again = writer
            .create_chat(NewChat::Direct {
                creator: users[1],
                peer: users[0],
            })
            .await
            .unwrap();
        assert_eq!((again.chat_id, again.event), (first.chat_id, None));
        let chat = first.chat_id;
        assert_eq!(
            writer
                .create_chat(NewChat::Direct {
                    creator: users[0],
                    peer: users[0]
                })
                .await,
            Err(WriteError::CannotTargetSelf)
        );
        assert_eq!(
            writer
                .create_chat(NewChat::Direct {
                    creator: users[0],
                    peer: UserId(999)
                })
                .await,
            Err(WriteError::UserNotFound(UserId(999)))
        );
        for refused in [
            Change::AddMembers {
                user_ids: vec![users[2]],
                max_members: 10,
                invitations: InvitationLimits::default(),
            },
            Change::RemoveMember { user_id: users[1] },
            Change::Leave,
            Change::Rename { title: "x".into() },
        ] {
            assert_eq!(
                writer.append(change(chat, users[0], refused)).await,
                Err(WriteError::DirectChat)
            );
        }
        let done = writer
            .append(message(chat, users[1], "hi", &users[..2]))
            .await
            .unwrap();
        assert_eq!(done.event().seq, 2);
    }

    #[tokio::test]
    async fn roles_decide_who_may_change_a_group() {
        let (_dir, storage) = temp_storage();
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let u = add_users(&storage, 5);
        let (owner, admin, admin2, member, outsider) = (u[0], u[1], u[2], u[3], u[4]);
        let chat = group(&writer, owner, &[admin, admin2, member]).await;
        let run = |sender, change: Change| {
            let writer = writer.clone();
            async move {
                writer
                    .append(super::tests::change(chat, sender, change))
                    .await
            }
        };
        let set_role = |user_id, role| Change::SetRole { user_id, role };
        run(owner, set_role(admin, Role::Admin)).await.unwrap();
        run(owner, set_role(admin2, Role::Admin)).await.unwrap();

        // members neither add, remove nor rename
        let add = |user_id| Change::AddMembers {
            user_ids: vec![user_id],
            max_members: 5,
            invitations: InvitationLimits::default(),
        };
        assert_eq!(
            run(member, add(outsider)).await,
            Err(WriteError::RoleRequired(Role::Admin))
        );
        assert_eq!(
            run(member, Change::Rename { title: "t".into() }).await,
            Err(WriteError::RoleRequired(Role::Admin))
        );
        // admins do not set roles, and do not remove admins or the owner
        assert_eq!(
            run(admin, set_role(member, Role::Admin)).await,
            Err(WriteError::RoleRequired(Role::Owner))
        );
        assert_eq!(
            run(admin, Change::RemoveMember { user_id: admin2 }).await,
            Err(WriteError::Outranked)
        );
        assert_eq!(
            run(admin, Change::RemoveMember { user_id: owner }).await,
            Err(WriteError::Outranked)
        );
        assert_eq!(
            run(owner, set_role(member, Role::Owner)).await,
            Err(WriteError::InvalidRole)
        );
        assert_eq!(
            run(owner, Change::Leave).await,
            Err(WriteError::OwnerMustTransfer)
        );
        assert_eq!(
            run(owner, Change::RemoveMember { user_id: owner }).await,
            Err(WriteError::CannotTargetSelf)
        );
        assert_eq!(
            run(owner, Change::RemoveMember { user_id: outsider }).await,
            Err(WriteError::NotMember(outsider))
        );
        // admins add (up to the limit) and rename
        let added = run(admin, add(outsider)).await.unwrap();
        assert_eq!(added.added, [outsider]);
        assert_eq!(added.members, u);
        assert_eq!(
            run(admin, add(outsider)).await,
            Err(WriteError::AlreadyMember(outsider))
        );
        // an id without an account is skipped: nothing stored, nobody invited
        let nobody = run(
            admin,
            Change::AddMembers {
                user_ids: vec![UserId(999)],
                max_members: 10,
                invitations: InvitationLimits::default(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            (
                nobody.events.len(),
                nobody.added.len(),
                nobody.invited.len()
            ),
            (0, 0, 0)
        );
        let sixth = add_users_more(&storage, "sixth");
        assert_eq!(
            run(
                admin,
                Change::AddMembers {
                    user_ids: vec![sixth],
                    max_members: 5,
                    invitations: InvitationLimits::default(),
                }
            )
            .await,
            Err(WriteError::TooManyMembers { max: 5 })
        );
        run(
            admin,
            Change::Rename {
                title: "renamed".into(),
            },
        )
        .await
        .unwrap();
        // the owner removes an admin, an admin removes a member
        run(owner, Change::RemoveMember { user_id: admin2 })
            .await
            .unwrap();
        run(admin, Change::RemoveMember { user_id: outsider })
            .await
            .unwrap();
        // transfer: two events, roles swapped
        let transfer = run(owner, Change::TransferOwnership { user_id: member })
            .await
            .unwrap();
        let bodies: Vec<_> = transfer.events.iter().map(|e| e.body.clone()).collect();
        assert_eq!(
            bodies,
            [
                EventBody::RoleChanged {
                    user_id: member,
                    role: Role::Owner
                },
                EventBody::RoleChanged {
                    user_id: owner,
                    role: Role::Admin
                },
            ]
        );
        assert_eq!(transfer.events[1].seq, transfer.events[0].seq + 1);
        let role_of = |user| {
            storage
                .with_conn(|conn| chats::membership(conn, chat, user))
                .unwrap()
                .map(|m| m.role)
        };
        assert_eq!(role_of(member), Some(Role::Owner));
        assert_eq!(role_of(owner), Some(Role::Admin));
        // the former owner may leave now
        let left = run(owner, Change::Leave).await.unwrap();
        assert_eq!(left.removed, [owner]);
        assert_eq!(role_of(owner), None);
        let title = storage
            .with_conn(|conn| chats::by_id(conn, chat))
            .unwrap()
            .unwrap()
            .title;
        assert_eq!(title.as_deref(), Some("renamed"));
    }

    #[derive(Default)]
    struct Origins(Mutex<Vec<(Seq, Option<Origin>)>>);

    impl CommitListener for Origins {
        fn committed(&self, _: &ChatEvent, _: &[UserId]) {
            unreachable!("the writer calls committed_from");
        }

        fn committed_from(&self, event: &ChatEvent, _: &[UserId], origin: Option<Origin>) {
            self.0.lock().unwrap().push((event.seq, origin));
        }
    }

    #[tokio::test]
    async fn the_listener_learns_the_connection_a_change_came_in_on() {
        let (_dir, storage) = temp_storage();
        let origins = Arc::new(Origins::default());
        let writer =
            EventWriter::start(&storage, WriterConfig::default(), Some(origins.clone())).unwrap();
        let users = add_users(&storage, 2);
        let chat = group(&writer, users[0], &users).await;
        writer
            .append_from(message(chat, users[0], "a", &users), Origin(7))
            .await
            .unwrap();
        writer
            .append(message(chat, users[1], "b", &users))
            .await
            .unwrap();
        // a retry is answered, not announced again
        let retry = writer
            .append_from(message(chat, users[0], "a", &users), Origin(8))
            .await
            .unwrap();
        assert!(retry.duplicate);
        assert_eq!(
            *origins.0.lock().unwrap(),
            vec![(1, None), (2, Some(Origin(7))), (3, None)]
        );
    }

    fn add_users_more(storage: &Storage, handle: &str) -> UserId {
        storage
            .with_conn(|conn| {
                let id = users::insert(
                    conn,
                    &users::tests::new_user(&format!("{handle}@x.org"), handle),
                )?;
                set_policy(conn, id, GroupAddPolicy::Everyone)?;
                Ok::<_, StorageError>(id)
            })
            .unwrap()
    }

    #[tokio::test]
    async fn a_lone_owner_may_leave_and_groups_have_a_size_limit() {
        let (_dir, storage) = temp_storage();
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let u = add_users(&storage, 3);
        let too_big = writer
            .create_chat(NewChat::Group {
                creator: u[0],
                title: "t".into(),
                members: vec![u[1], u[2], u[0], u[1]],
                max_members: 2,
                invitations: InvitationLimits::default(),
            })
            .await;
        assert_eq!(too_big, Err(WriteError::TooManyMembers { max: 2 }));
        let created = writer
            .create_chat(NewChat::Group {
                creator: u[0],
                title: "t".into(),
                members: vec![u[1], u[0], u[1]],
                max_members: 2,
                invitations: InvitationLimits::default(),
            })
            .await
            .unwrap();
        // duplicates and the creator count once
        assert_eq!(created.members, &u[..2]);
        let chat = created.chat_id;
        writer
            .append(change(chat, u[1], Change::Leave))
            .await
            .unwrap();
        let done = writer
            .append(change(chat, u[0], Change::Leave))
            .await
            .unwrap();
        assert!(done.members.is_empty());
    }

    #[tokio::test]
    async fn edits_and_deletes_are_for_the_author_of_a_live_message() {
        let (_dir, storage) = temp_storage();
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let u = add_users(&storage, 2);
        let chat = group(&writer, u[0], &u).await;
        let sent = writer.append(message(chat, u[0], "m", &u)).await.unwrap();
        let seq = sent.event().seq;
        let edit = |sender, id: &str, target_seq| {
            change(
                chat,
                sender,
                Change::Edit {
                    target_seq,
                    envelope: envelope(chat, sender, id, &u),
                },
            )
        };
        assert_eq!(
            writer.append(edit(u[1], "e0", seq)).await,
            Err(WriteError::NotMessageAuthor)
        );
        assert_eq!(
            writer.append(edit(u[0], "e0", 1)).await,
            Err(WriteError::MessageNotFound)
        );
        assert_eq!(
            writer.append(edit(u[0], "e0", 99)).await,
            Err(WriteError::MessageNotFound)
        );
        // the message's own id cannot name an edit
        assert_eq!(
            writer.append(edit(u[0], "m", seq)).await,
            Err(WriteError::ClientMsgIdReused)
        );
        let edited = writer.append(edit(u[0], "e1", seq)).await.unwrap();
        let retried = writer.append(edit(u[0], "e1", seq)).await.unwrap();
        assert!(retried.duplicate);
        assert_eq!(retried.event(), edited.event());
        // an edit's id cannot name a message either
        assert_eq!(
            writer.append(message(chat, u[0], "e1", &u)).await,
            Err(WriteError::ClientMsgIdReused)
        );
        let delete = |sender, target_seq| change(chat, sender, Change::Delete { target_seq });
        assert_eq!(
            writer.append(delete(u[1], seq)).await,
            Err(WriteError::NotMessageAuthor)
        );
        assert_eq!(
            writer.append(delete(u[0], edited.event().seq)).await,
            Err(WriteError::MessageNotFound)
        );
        let deleted = writer.append(delete(u[0], seq)).await.unwrap();
        let again = writer.append(delete(u[0], seq)).await.unwrap();
        assert!(again.duplicate);
        assert_eq!(again.event(), deleted.event());
        assert_eq!(
            writer.append(edit(u[0], "e2", seq)).await,
            Err(WriteError::MessageNotFound)
        );
        assert_eq!(stored_seqs(&storage, chat), [1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn read_positions_only_move_forwards_and_not_past_the_end() {
        let (_dir, storage) = temp_storage();
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let u = add_users(&storage, 2);
        let chat = group(&writer, u[0], &u).await;
        for n in 0..3 {
            writer
                .append(message(chat, u[0], &format!("m{n}"), &u))
                .await
                .unwrap();
        }
        let mark = writer.mark_read(chat, u[1], 3).await.unwrap();
        assert_eq!((mark.seq, mark.moved), (3, true));
        assert_eq!(mark.notify, u);
        let back = writer.mark_read(chat, u[1], 2).await.unwrap();
        assert_eq!((back.seq, back.moved), (3, false));
        assert!(back.notify.is_empty());
        let future = writer.mark_read(chat, u[1], 1_000).await.unwrap();
        assert_eq!((future.seq, future.moved), (4, true));
        // Reading implies delivery: the delivery position followed.
        let delivered = writer.mark_delivered(chat, u[1], 4).await.unwrap();
        assert_eq!((delivered.seq, delivered.moved), (4, false));
    }

    #[tokio::test]
    async fn delivery_receipts_move_forwards_and_tell_the_senders_they_cover() {
        let (_dir, storage) = temp_storage();
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let u = add_users(&storage, 4);
        // seq 1: created
        let chat = group(&writer, u[0], &u).await;
        // seq 2, 3: u0; seq 4: u1; seq 5: u2
        for (n, sender) in [u[0], u[0], u[1], u[2]].into_iter().enumerate() {
            writer
                .append(message(chat, sender, &format!("m{n}"), &u))
                .await
                .unwrap();
        }
        // u3 received up to 3: only u0's messages are newly covered.
        let mark = writer.mark_delivered(chat, u[3], 3).await.unwrap();
        assert_eq!((mark.seq, mark.moved), (3, true));
        assert_eq!(mark.notify, vec![u[0], u[3]]);
        // Again, or less: nothing moves, nobody is told.
        let same = writer.mark_delivered(chat, u[3], 2).await.unwrap();
        assert_eq!((same.seq, same.moved), (3, false));
        assert!(same.notify.is_empty());
        // Up to the end (a too-large seq is capped): u1 and u2 are covered now.
        let rest = writer.mark_delivered(chat, u[3], 99).await.unwrap();
        assert_eq!((rest.seq, rest.moved), (5, true));
        assert_eq!(rest.notify, vec![u[1], u[2], u[3]]);
        // u1 receiving its own and others' messages tells the others, and itself once.
        let own = writer.mark_delivered(chat, u[1], 5).await.unwrap();
        assert_eq!(own.notify, vec![u[0], u[1], u[2]]);
        // The positions are what chat.get shows.
        let members = storage
            .with_conn(move |conn| chats::members(conn, chat))
            .unwrap();
        let delivered: Vec<Seq> = members.iter().map(|m| m.delivered_seq).collect();
        // Everyone starts at the creation (seq 1).
        assert_eq!(delivered, vec![1, 5, 1, 5]);
        let first = u[0];
        let (read, got) = storage
            .with_conn(move |conn| chats::others_positions(conn, chat, first))
            .unwrap();
        assert_eq!((read, got), (1, 5));
        assert_eq!(
            writer.mark_delivered(ChatId(999), u[0], 1).await,
            Err(WriteError::ChatNotFound)
        );
    }

    #[tokio::test]
    async fn a_deleted_owner_hands_the_group_on() {
        let (_dir, storage) = temp_storage();
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let u = add_users(&storage, 4);
        let chat = group(&writer, u[0], &u).await;
        writer
            .append(change(
                chat,
                u[0],
                Change::SetRole {
                    user_id: u[3],
                    role: Role::Admin,
                },
            ))
            .await
            .unwrap();
        writer
            .append(message(chat, u[0], "before", &u))
            .await
            .unwrap();
        let done = writer
            .append(change(chat, u[0], Change::AccountDeleted))
            .await
            .unwrap();
        let bodies: Vec<_> = done.events.iter().map(|e| e.body.clone()).collect();
        // the admin outranks the longer-standing members
        assert_eq!(
            bodies,
            [
                EventBody::MemberLeft { user_id: u[0] },
                EventBody::RoleChanged {
                    user_id: u[3],
                    role: Role::Owner
                }
            ]
        );
        assert_eq!(done.members, &u[1..]);
        assert_eq!(done.removed, [u[0]]);
        // the account goes; its messages stay, with a sender that no longer resolves
        storage.with_conn(|conn| users::delete(conn, u[0])).unwrap();
        let kept = storage
            .with_conn(|conn| events::by_seq(conn, chat, 3))
            .unwrap()
            .unwrap();
        assert_eq!(kept.sender, u[0]);
        assert_eq!(
            storage
                .with_conn(|conn| chats::profile(conn, u[0]))
                .unwrap(),
            None
        );
    }

    fn add(user_ids: Vec<UserId>) -> Change {
        Change::AddMembers {
            user_ids,
            max_members: 100,
            invitations: InvitationLimits::default(),
        }
    }

    fn left_events(storage: &Storage, chat: ChatId, user: UserId) -> usize {
        let events = storage
            .with_conn(|conn| events::events_after(conn, chat, 0, 1000))
            .unwrap();
        events
            .iter()
            .filter(|e| e.body == EventBody::MemberLeft { user_id: user })
            .count()
    }

    /// Point 14c of issue 11: an account deletion racing an add. Both go
    /// through the writer, so in either order the group ends with a member
    /// list without the deleted account, and a `member_left` wherever it
    /// had become a member.
    #[tokio::test]
    async fn an_account_deletion_and_an_add_serialize_in_either_order() {
        for add_first in [true, false] {
            let (_dir, storage) = temp_storage();
            let u = add_users(&storage, 3);
            let (owner, doomed) = (u[0], u[2]);
            let chat = {
                let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
                group(&writer, owner, &[u[1]]).await
            };
            let (open, gate) = std::sync::mpsc::channel();
            let writer = EventWriter::start_gated(&storage, WriterConfig::default(), gate).unwrap();
            let adding = {
                let writer = writer.clone();
                async move { writer.append(change(chat, owner, add(vec![doomed]))).await }
            };
            let deleting = {
                let writer = writer.clone();
                async move { writer.delete_account(doomed).await }
            };
            let (added, deleted) = if add_first {
                let added = tokio::spawn(adding);
                queued(&writer, 1).await;
                let deleted = tokio::spawn(deleting);
                queued(&writer, 2).await;
                open.send(()).unwrap();
                (added.await.unwrap(), deleted.await.unwrap())
            } else {
                let deleted = tokio::spawn(deleting);
                queued(&writer, 1).await;
                let added = tokio::spawn(adding);
                queued(&writer, 2).await;
                open.send(()).unwrap();
                (added.await.unwrap(), deleted.await.unwrap())
            };
            let added = added.unwrap();
            let departures = deleted.unwrap();
            let members = storage
                .with_conn(|conn| chats::member_ids(conn, chat))
                .unwrap();
            assert_eq!(members, [owner, u[1]], "add first: {add_first}");
            if add_first {
                assert_eq!(added.added, [doomed]);
                assert_eq!(departures.len(), 1);
                assert_eq!(departures[0].removed, [doomed]);
                assert_eq!(left_events(&storage, chat, doomed), 1);
            } else {
                // The account was gone: answered like any unknown id.
                assert!(added.added.is_empty() && added.events.is_empty());
                assert!(departures.is_empty());
                assert_eq!(left_events(&storage, chat, doomed), 0);
            }
        }
    }

    #[tokio::test]
    async fn consent_decides_between_membership_and_invitation() {
        let (_dir, storage) = temp_storage();
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let u = add_users(&storage, 4);
        let (alice, bob, carol, dave) = (u[0], u[1], u[2], u[3]);
        storage
            .with_conn(|conn| {
                set_policy(conn, bob, GroupAddPolicy::ChatPartners)?;
                set_policy(conn, carol, GroupAddPolicy::Nobody)
            })
            .unwrap();
        let created = writer
            .create_chat(NewChat::Group {
                creator: alice,
                title: "t".into(),
                members: vec![bob, carol, dave, UserId(999)],
                max_members: 10,
                invitations: InvitationLimits::default(),
            })
            .await
            .unwrap();
        assert_eq!(created.members, [alice, dave]);
        assert_eq!(created.invited, [bob, carol]);
        let chat = created.chat_id;
        // An invitee is no member: not in the wraps, cannot write.
        assert_eq!(
            writer.append(message(chat, bob, "x", &[alice, dave])).await,
            Err(WriteError::NotAMember)
        );
        // Dave shares this group with Alice now; Bob does not.
        let other = group(&writer, dave, &[]).await;
        let done = writer
            .append(change(other, dave, add(vec![alice, bob])))
            .await
            .unwrap();
        assert_eq!((done.added, done.invited), (vec![alice], vec![bob]));
        // Accepting: a member, with members_added sent by himself.
        let accepted = writer
            .append(change(
                chat,
                bob,
                Change::AcceptInvitation { max_members: 10 },
            ))
            .await
            .unwrap();
        assert_eq!(accepted.added, [bob]);
        assert_eq!(accepted.event().sender, bob);
        assert_eq!(accepted.members, [alice, bob, dave]);
        assert_eq!(
            writer
                .append(change(
                    chat,
                    bob,
                    Change::AcceptInvitation { max_members: 10 }
                ))
                .await,
            Err(WriteError::NoInvitation)
        );
        // A full group keeps the invitation for later.
        assert_eq!(
            writer
                .append(change(
                    chat,
                    carol,
                    Change::AcceptInvitation { max_members: 3 }
                ))
                .await,
            Err(WriteError::TooManyMembers { max: 3 })
        );
        let pending = storage
            .with_conn(|conn| invitations::list(conn, carol, 0))
            .unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].inviter.as_ref().map(|p| p.id), Some(alice));
    }

    #[tokio::test]
    async fn invitations_per_invitee_are_capped_and_expire() {
        let (_dir, storage) = temp_storage();
        let u = add_users(&storage, 2);
        let (alice, bob) = (u[0], u[1]);
        let limits = InvitationLimits {
            max_pending: 3,
            ttl_ms: 1_000,
        };
        let writer = EventWriter::start(&storage, WriterConfig::default(), None).unwrap();
        let chats: Vec<ChatId> = {
            let mut chats = Vec::new();
            for _ in 0..5 {
                chats.push(group(&writer, alice, &[]).await);
            }
            chats
        };
        storage
            .with_conn(|conn| {
                for (i, chat) in chats.iter().enumerate() {
                    invitations::invite(conn, *chat, bob, alice, 100 + i as i64, limits)?;
                }
                Ok::<_, StorageError>(())
            })
            .unwrap();
        let listed = |now| {
            storage
                .with_conn(|conn| invitations::list(conn, bob, now))
                .unwrap()
                .iter()
                .map(|i| i.chat_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(listed(200), [chats[4], chats[3], chats[2]]);
        assert_eq!(
            storage
                .with_conn(|conn| invitations::stored_count(conn, bob))
                .unwrap(),
            3
        );
        // After their lifetime they are not listed, and the next one prunes them.
        assert!(listed(2_000).is_empty());
        storage
            .with_conn(|conn| invitations::invite(conn, chats[0], bob, alice, 5_000, limits))
            .unwrap();
        assert_eq!(listed(5_000), [chats[0]]);
        assert_eq!(
            storage
                .with_conn(|conn| invitations::stored_count(conn, bob))
                .unwrap(),
            1
        );
    }
}
