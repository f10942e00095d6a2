//! Presence: a user is online while at least one of their WebSocket
//! connections is authenticated; when the last one ends, the time is kept as
//! "last seen". The hub is the only writer; readers (the `presence.get`
//! handler through the notifier) take a short lock, never an actor round trip.

use ferrogram_core::ids::{Timestamp, UserId};
use ferrogram_core::proto::chat::PresenceInfo;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    connections: u32,
    last_seen: Option<Timestamp>,
}

/// Who is online, and when the others were last seen (since this process
/// started).
#[derive(Debug, Default)]
pub struct PresenceBoard {
    users: Mutex<HashMap<UserId, Entry>>,
}

impl PresenceBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Entry>> {
        // A panic while holding this lock cannot leave a half-updated entry
        // (every update is one assignment), so a poisoned lock is still valid.
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn info(&self, user: UserId) -> PresenceInfo {
        let entry = self.lock().get(&user).copied().unwrap_or_default();
        PresenceInfo {
            user_id: user,
            online: entry.connections > 0,
            last_seen_at: if entry.connections > 0 {
                None
            } else {
                entry.last_seen
            },
        }
    }

    /// One more connection; true when the user just came online.
    pub(crate) fn connected(&self, user: UserId) -> bool {
        let mut users = self.lock();
        let entry = users.entry(user).or_default();
        entry.connections += 1;
        entry.connections == 1
    }

    /// One connection fewer; true when the user just went offline.
    pub(crate) fn disconnected(&self, user: UserId, now: Timestamp) -> bool {
        let mut users = self.lock();
        let entry = users.entry(user).or_default();
        entry.connections = entry.connections.saturating_sub(1);
        if entry.connections == 0 {
            entry.last_seen = Some(now);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_while_any_connection_then_last_seen() {
        let board = PresenceBoard::default();
        let u = UserId(7);
        assert_eq!(
            board.info(u),
            PresenceInfo {
                user_id: u,
                online: false,
                last_seen_at: None
            }
        );
        assert!(board.connected(u));
        assert!(!board.connected(u), "second device: already online");
        assert!(board.info(u).online);
        assert!(!board.disconnected(u, Timestamp::from_millis(100)));
        assert!(board.info(u).online);
        assert!(board.disconnected(u, Timestamp::from_millis(200)));
        let info = board.info(u);
        assert!(!info.online);
        assert_eq!(info.last_seen_at, Some(Timestamp::from_millis(200)));
        assert!(board.connected(u));
        assert_eq!(board.info(u).last_seen_at, None);
    }
}
