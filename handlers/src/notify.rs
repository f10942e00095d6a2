//! How handlers reach connected clients. The server's WebSocket gateway
//! implements [`Notifier`]; handlers and the event writer only call it.
//!
//! Stored chat events reach the notifier from the event writer's thread,
//! right after their commit and in seq order ([`commit_listener`]), never from
//! a handler: so no client hears of an event that could still be lost, and
//! each chat's events arrive in order. Handlers call the notifier directly
//! only for what is never stored (typing, read receipts, chat joined or
//! removed) and to close sockets.
//!
//! Every method must return at once (queue the work, e.g. `Addr::do_send`):
//! `chat_events` runs on the writer's thread, and a slow notifier would hold
//! up every message of the server.

use ferrogram_core::ids::{Origin, SessionId, UserId};
use ferrogram_core::proto::{ChatEvent, LiveEvent, PresenceInfo};
use ferrogram_storage::writer::{CommitListener, WriteContext};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub trait Notifier: Send + Sync {
    /// Committed chat events (one writer batch, in commit order): deliver
    /// each to every online session of its `members`, except the connection
    /// of its `origin`, if any, whose command stored it (its reply carries
    /// the seq).
    fn chat_events(&self, events: Vec<CommittedEvent>);
    /// An unstored event (typing, read receipt, presence, chat joined/removed).
    fn live_event(&self, users: &[UserId], event: &LiveEvent);
    /// Close every socket of this session now (revoked / logged out).
    fn session_closed(&self, session: &SessionId);
    /// Close every socket of this user now (account deleted).
    fn user_closed(&self, user: UserId);
    fn presence(&self, user: UserId) -> PresenceInfo;
}

/// A notifier with nobody to notify: everyone is offline. For servers
/// without the gateway, and for tests that do not look at notifications.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopNotifier;

impl Notifier for NoopNotifier {
    fn chat_events(&self, _: Vec<CommittedEvent>) {}
    fn live_event(&self, _: &[UserId], _: &LiveEvent) {}
    fn session_closed(&self, _: &SessionId) {}
    fn user_closed(&self, _: UserId) {}
    fn presence(&self, user: UserId) -> PresenceInfo {
        offline(user)
    }
}

pub(crate) fn offline(user: UserId) -> PresenceInfo {
    PresenceInfo {
        user_id: user,
        online: false,
        last_seen_at: None,
    }
}

/// Passes the event writer's committed events to a notifier. Build the
/// writer with it: `EventWriter::start(&storage, config, rules, Some(commit_listener(notifier)))`.
pub fn commit_listener(notifier: Arc<dyn Notifier>) -> Arc<dyn CommitListener> {
    Arc::new(NotifyOnCommit {
        notifier,
        batch: Mutex::new(Vec::new()),
    })
}

/// A committed event and who is told: every online session of `members`
/// but the connection `origin` (see [`Notifier::chat_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedEvent {
    pub members: Vec<UserId>,
    pub event: ChatEvent,
    pub origin: Option<Origin>,
}

/// Gathers a writer batch's events and passes them on together when the
/// batch is done: one hand-over (and one wake-up of the gateway) per batch
/// instead of one per event.
struct NotifyOnCommit {
    notifier: Arc<dyn Notifier>,
    batch: Mutex<Vec<CommittedEvent>>,
}

impl CommitListener for NotifyOnCommit {
    fn committed(&self, event: &ChatEvent, recipients: &[UserId], context: WriteContext) {
        let committed = CommittedEvent {
            members: recipients.to_vec(),
            event: event.clone(),
            origin: context.origin,
        };
        // Only the writer's thread calls this: the lock is never contended.
        self.batch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(committed);
    }

    fn batch_done(&self) {
        let events = std::mem::take(
            &mut *self
                .batch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if !events.is_empty() {
            self.notifier.chat_events(events);
        }
    }
}

/// One call a [`RecordingNotifier`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    ChatEvent {
        members: Vec<UserId>,
        event: ChatEvent,
    },
    Live {
        users: Vec<UserId>,
        event: LiveEvent,
    },
    SessionClosed(SessionId),
    UserClosed(UserId),
}

/// A notifier for tests: records every call; presence is whatever the test
/// set (offline otherwise).
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    calls: Mutex<Vec<Notification>>,
    presence: Mutex<HashMap<UserId, PresenceInfo>>,
}

impl RecordingNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call so far, oldest first; the record starts empty again.
    pub fn take(&self) -> Vec<Notification> {
        std::mem::take(&mut *lock(&self.calls))
    }

    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<Notification> {
        lock(&self.calls).clone()
    }

    pub fn set_presence(&self, info: PresenceInfo) {
        lock(&self.presence).insert(info.user_id, info);
    }

    fn record(&self, call: Notification) {
        lock(&self.calls).push(call);
    }
}

/// A test that panicked while holding the lock must not hide the record.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Notifier for RecordingNotifier {
    fn chat_events(&self, events: Vec<CommittedEvent>) {
        for e in events {
            self.record(Notification::ChatEvent {
                members: e.members,
                event: e.event,
            });
        }
    }

    fn live_event(&self, users: &[UserId], event: &LiveEvent) {
        self.record(Notification::Live {
            users: users.to_vec(),
            event: event.clone(),
        });
    }

    fn session_closed(&self, session: &SessionId) {
        self.record(Notification::SessionClosed(session.clone()));
    }

    fn user_closed(&self, user: UserId) {
        self.record(Notification::UserClosed(user));
    }

    fn presence(&self, user: UserId) -> PresenceInfo {
        lock(&self.presence)
            .get(&user)
            .cloned()
            .unwrap_or_else(|| offline(user))
    }
}
