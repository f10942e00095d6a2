//! The writer's thread: the batch loop, one transaction per batch.

use super::apply::{apply_change, create_chat, delete_account, mark, union, Abort};
use super::checkpoint::{passive_checkpoint, WAL_RESTART_FRAMES};
use super::stats::StatsCell;
use super::{
    AppendRequest, Appended, Change, CommitListener, Created, NewChat, PositionMark, WriteContext,
    WriteError, BUSY_BATCH,
};
use crate::chats::Receipt;
use crate::rules::ChatRules;
use crate::StorageError;
use ferrogram_core::ids::{ChatId, Seq, Timestamp, UserId};
use ferrogram_core::proto::ChatEvent;
use rusqlite::{Connection, TransactionBehavior};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub(super) type Reply<T> = oneshot::Sender<Result<T, WriteError>>;

/// One queued request, its reply channel and, once applied, its result.
pub(super) enum Job {
    Append {
        request: Option<AppendRequest>,
        /// Where the request came from (see [`WriteContext`]).
        context: WriteContext,
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

/// Splits a request's outcome: its result for the caller, or the storage
/// error that fails the batch. Returns whether the request's writes stay.
fn settle<T>(
    outcome: Result<T, Abort>,
    result: &mut Option<Result<T, WriteError>>,
) -> Result<bool, StorageError> {
    match outcome {
        Ok(done) => {
            *result = Some(Ok(done));
            Ok(true)
        }
        Err(Abort::Refused(e)) => {
            *result = Some(Err(e));
            Ok(false)
        }
        Err(Abort::Storage(e)) => Err(e),
    }
}

impl Job {
    /// True when a refusal of this request leaves nothing to undo (new
    /// messages: all checks read, then the quota charge, undone by hand if
    /// the rules refuse it, then one insert), so it needs no savepoint.
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
    fn apply(
        &mut self,
        conn: &Connection,
        rules: &dyn ChatRules,
        at: Timestamp,
    ) -> Result<bool, StorageError> {
        match self {
            Job::Append {
                request, result, ..
            } => match request.take() {
                Some(request) => settle(apply_change(conn, rules, request, at), result),
                None => Ok(false),
            },
            Job::Create { chat, result, .. } => match chat.take() {
                Some(chat) => settle(create_chat(conn, rules, chat, at), result),
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
                settle(delete_account(conn, rules, *user, at), result)
            }
        }
    }

    /// After the commit: tells the listener of the new events. False when
    /// there were none (a refusal, a duplicate, a position).
    fn announce(&self, listener: &dyn CommitListener) -> bool {
        match self {
            Job::Append {
                result: Some(Ok(appended)),
                context,
                ..
            } if !appended.duplicate => {
                let recipients = union(&appended.members, &appended.removed);
                for event in &appended.events {
                    announce(listener, event, &recipients, *context);
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
                announce(listener, event, members, WriteContext::default());
                true
            }
            Job::DeleteAccount {
                result: Some(Ok(departures)),
                ..
            } => {
                for appended in departures {
                    let recipients = union(&appended.members, &appended.removed);
                    for event in &appended.events {
                        announce(listener, event, &recipients, WriteContext::default());
                    }
                }
                !departures.is_empty()
            }
            _ => false,
        }
    }

    /// After the announcement: answers the caller (who may have gone away;
    /// what was stored stays stored all the same).
    pub(super) fn answer(self) {
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
    context: WriteContext,
) {
    let call = std::panic::catch_unwind(AssertUnwindSafe(|| {
        listener.committed(event, recipients, context);
    }));
    if call.is_err() {
        tracing::error!(chat_id = %event.chat_id, seq = event.seq.get(), "commit listener panicked");
    }
}

/// [`CommitListener::batch_done`], panics caught as in [`announce`].
fn finish_batch(listener: &dyn CommitListener) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| listener.batch_done())).is_err() {
        tracing::error!("commit listener panicked at the end of a batch");
    }
}

pub(super) struct Thread {
    pub(super) conn: Connection,
    pub(super) queue: mpsc::Receiver<Job>,
    pub(super) listener: Option<Arc<dyn CommitListener>>,
    /// Asked inside the transaction before each change it guards.
    pub(super) rules: Arc<dyn ChatRules>,
    pub(super) stats: Arc<StatsCell>,
    pub(super) max_batch: usize,
    pub(super) commit_delay: std::time::Duration,
    /// The WAL's length as the checkpointer last saw it.
    pub(super) wal_frames: Arc<std::sync::atomic::AtomicI64>,
}

impl Thread {
    pub(super) fn run(mut self) {
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
        match apply_batch(&mut self.conn, &*self.rules, batch, Timestamp::now()) {
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
    rules: &dyn ChatRules,
    batch: &mut [Job],
    at: Timestamp,
) -> Result<(), StorageError> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in batch.iter_mut() {
        if job.refused_before_writing() {
            // Nothing to undo when refused; a savepoint would only make
            // SQLite copy every page the batch already changed into its
            // statement journal.
            job.apply(&tx, rules, at)?;
            continue;
        }
        let savepoint = tx.savepoint()?;
        if job.apply(&savepoint, rules, at)? {
            savepoint.commit()?;
        } else {
            // Refused: undo whatever the request did before it was refused.
            savepoint.finish()?;
        }
    }
    tx.commit()?;
    Ok(())
}
