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
//! Who may do what is not decided here: the writer is started with a
//! [`ChatRules`] (the handlers' rules in the server) and asks it, inside the
//! transaction, before each change it guards.
//!
//! Layout: this file is the public handle ([`EventWriter`], the SQLite
//! [`EventStore`]); the requests and answers are the backend's
//! (`crate::backend`, re-exported here); `thread.rs` the batch loop (one
//! transaction per batch, a savepoint per request, announce, answer);
//! `checkpoint.rs` the WAL checkpointer beside it; `apply.rs` what each
//! request reads and writes, and where it asks the rules; `stats.rs` batch
//! statistics.

mod apply;
mod checkpoint;
mod stats;
#[cfg(test)]
pub(crate) mod tests;
mod thread;

pub use crate::backend::{
    AppendRequest, Appended, Change, CommitListener, Created, EventStore, NewChat, PositionMark,
    WriteContext, WriteError,
};
pub use stats::{WriterStats, STAT_BUCKETS};

use crate::chats::Receipt;
use crate::rules::ChatRules;
use crate::{Storage, StorageError};
use async_trait::async_trait;
use checkpoint::Checkpointer;
use ferrogram_core::ids::{ChatId, Seq, UserId};
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
    /// migrated by `Storage::open`) and starts its thread. Every change is
    /// judged by `rules` inside the transaction that stores it.
    pub fn start(
        storage: &Storage,
        config: WriterConfig,
        rules: Arc<dyn ChatRules>,
        listener: Option<Arc<dyn CommitListener>>,
    ) -> Result<EventWriter, StorageError> {
        Self::spawn(storage, config, rules, listener, None)
    }

    /// `start`, but the thread takes no request until `gate` receives (or is
    /// dropped): lets tests queue a known batch.
    #[cfg(test)]
    pub(crate) fn start_gated(
        storage: &Storage,
        config: WriterConfig,
        rules: Arc<dyn ChatRules>,
        listener: Option<Arc<dyn CommitListener>>,
        gate: std::sync::mpsc::Receiver<()>,
    ) -> Result<EventWriter, StorageError> {
        Self::spawn(storage, config, rules, listener, Some(gate))
    }

    fn spawn(
        storage: &Storage,
        config: WriterConfig,
        rules: Arc<dyn ChatRules>,
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
            rules,
            stats: stats.clone(),
            max_batch: config.max_batch.max(1),
            commit_delay: config.commit_delay,
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

    /// See [`EventStore::append`].
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

    /// See [`EventStore::create_chat`].
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

    /// See [`EventStore::delete_account`].
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

    /// See [`EventStore::mark`].
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

/// The SQLite backend: every operation is a job of the writer's batches.
#[async_trait]
impl EventStore for EventWriter {
    async fn append(
        &self,
        request: AppendRequest,
        context: WriteContext,
    ) -> Result<Appended, WriteError> {
        EventWriter::append(self, request, context).await
    }

    async fn create_chat(&self, chat: NewChat) -> Result<Created, WriteError> {
        EventWriter::create_chat(self, chat).await
    }

    async fn delete_account(&self, user: UserId) -> Result<Vec<Appended>, WriteError> {
        EventWriter::delete_account(self, user).await
    }

    async fn mark(
        &self,
        receipt: Receipt,
        chat_id: ChatId,
        user: UserId,
        seq: Seq,
    ) -> Result<PositionMark, WriteError> {
        EventWriter::mark(self, receipt, chat_id, user, seq).await
    }
}
