//! Caps on open WebSockets per client IP, per account and per login session
//! (`limits.max_sockets_per_ip`, `..._per_user`, `..._per_session`).
//!
//! Each open socket holds one [`CapGuard`] per key it counts under; dropping
//! the guard gives the place back, so a count can never leak past the socket
//! it belongs to. The IP is checked at the upgrade (HTTP 429
//! `too_many_connections`), the account and session when the `auth` frame is
//! accepted (an `error` frame `too_many_connections`, then close 1008).

use ferrogram_core::ids::{SessionId, UserId};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The three limits, from `limits.max_sockets_per_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapLimits {
    pub per_session: usize,
    pub per_user: usize,
    pub per_ip: usize,
}

/// Which cap refused a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapExceeded {
    Ip(usize),
    User(usize),
    Session(usize),
}

impl CapExceeded {
    /// The message of the `too_many_connections` error.
    pub fn message(self) -> String {
        match self {
            CapExceeded::Ip(n) => {
                format!("too many open WebSockets from this address (at most {n})")
            }
            CapExceeded::User(n) => {
                format!("too many open WebSockets for this account (at most {n})")
            }
            CapExceeded::Session(n) => {
                format!("too many open WebSockets for this login session (at most {n})")
            }
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    ip: HashMap<IpAddr, usize>,
    user: HashMap<UserId, usize>,
    session: HashMap<SessionId, usize>,
}

/// The open-socket counts of the whole server.
#[derive(Debug)]
pub struct SocketCaps {
    limits: CapLimits,
    counts: Mutex<Counts>,
}

#[derive(Debug)]
enum Key {
    Ip(IpAddr),
    User(UserId),
    Session(SessionId),
}

/// One socket's place under one cap; dropping it frees the place.
#[derive(Debug)]
pub struct CapGuard {
    caps: Arc<SocketCaps>,
    key: Option<Key>,
}

fn take<K: Eq + Hash + Clone>(map: &mut HashMap<K, usize>, key: &K, limit: usize) -> bool {
    let count = map.entry(key.clone()).or_insert(0);
    if *count >= limit {
        if *count == 0 {
            map.remove(key);
        }
        return false;
    }
    *count += 1;
    true
}

fn give_back<K: Eq + Hash>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = map.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            map.remove(key);
        }
    }
}

impl SocketCaps {
    pub fn new(limits: CapLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent whatever panicked while holding the lock.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for one more socket from `ip`.
    pub fn acquire_ip(self: &Arc<Self>, ip: IpAddr) -> Result<CapGuard, CapExceeded> {
        let limit = self.limits.per_ip;
        if !take(&mut self.counts().ip, &ip, limit) {
            return Err(CapExceeded::Ip(limit));
        }
        Ok(self.guard(Key::Ip(ip)))
    }

    /// Places for one more socket of `user` and of its login `session`
    /// (both or neither).
    pub fn acquire_account(
        self: &Arc<Self>,
        user: UserId,
        session: &SessionId,
    ) -> Result<[CapGuard; 2], CapExceeded> {
        let CapLimits {
            per_user,
            per_session,
            ..
        } = self.limits;
        {
            let mut counts = self.counts();
            if !take(&mut counts.user, &user, per_user) {
                return Err(CapExceeded::User(per_user));
            }
            if !take(&mut counts.session, session, per_session) {
                give_back(&mut counts.user, &user);
                return Err(CapExceeded::Session(per_session));
            }
        }
        Ok([
            self.guard(Key::User(user)),
            self.guard(Key::Session(session.clone())),
        ])
    }

    fn guard(self: &Arc<Self>, key: Key) -> CapGuard {
        CapGuard {
            caps: self.clone(),
            key: Some(key),
        }
    }

    /// Open sockets counted for `ip` (tests, diagnostics).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.counts().ip.get(&ip).copied().unwrap_or(0)
    }

    /// Open sockets counted for `user` (tests, diagnostics).
    pub fn open_for(&self, user: UserId) -> usize {
        self.counts().user.get(&user).copied().unwrap_or(0)
    }
}

impl Drop for CapGuard {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut counts = self.caps.counts();
        match &key {
            Key::Ip(ip) => give_back(&mut counts.ip, ip),
            Key::User(user) => give_back(&mut counts.user, user),
            Key::Session(session) => give_back(&mut counts.session, session),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(per_session: usize, per_user: usize, per_ip: usize) -> Arc<SocketCaps> {
        SocketCaps::new(CapLimits {
            per_session,
            per_user,
            per_ip,
        })
    }

    #[test]
    fn each_cap_refuses_one_over_and_a_dropped_guard_frees_its_place() {
        let caps = caps(2, 3, 2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = caps.acquire_ip(ip).unwrap();
        let _b = caps.acquire_ip(ip).unwrap();
        assert_eq!(caps.acquire_ip(ip).unwrap_err(), CapExceeded::Ip(2));
        // another address is counted apart
        let _other = caps.acquire_ip("192.0.2.2".parse().unwrap()).unwrap();
        drop(a);
        let _c = caps.acquire_ip(ip).unwrap();

        let user = UserId(7);
        let s1 = SessionId("s1".into());
        let s2 = SessionId("s2".into());
        let first = caps.acquire_account(user, &s1).unwrap();
        let _second = caps.acquire_account(user, &s1).unwrap();
        assert_eq!(
            caps.acquire_account(user, &s1).unwrap_err(),
            CapExceeded::Session(2)
        );
        // the refused session did not keep a place of the user
        assert_eq!(caps.open_for(user), 2);
        let _third = caps.acquire_account(user, &s2).unwrap();
        assert_eq!(
            caps.acquire_account(user, &s2).unwrap_err(),
            CapExceeded::User(3)
        );
        drop(first);
        assert_eq!(caps.open_for(user), 2);
        let _again = caps.acquire_account(user, &s2).unwrap();
    }

    #[test]
    fn counts_go_back_to_nothing() {
        let caps = caps(1, 1, 1);
        let ip: IpAddr = "::1".parse().unwrap();
        let guards = (
            caps.acquire_ip(ip).unwrap(),
            caps.acquire_account(UserId(1), &SessionId("x".into()))
                .unwrap(),
        );
        drop(guards);
        let counts = caps.counts();
        assert!(counts.ip.is_empty() && counts.user.is_empty() && counts.session.is_empty());
    }

    #[test]
    fn a_zero_cap_refuses_everything_and_keeps_no_entry() {
        let caps = caps(0, 0, 0);
        assert!(caps.acquire_ip("::1".parse().unwrap()).is_err());
        assert!(caps
            .acquire_account(UserId(1), &SessionId("x".into()))
            .is_err());
        let counts = caps.counts();
        assert!(counts.ip.is_empty() && counts.user.is_empty());
    }
}
