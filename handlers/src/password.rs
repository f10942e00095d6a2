//! The server-side Argon2id hash of a client's `auth_key`.
//!
//! The `auth_key` is already the output of the client's own Argon2id, so this
//! hash is a second line of defence: a stolen database yields no key that logs
//! in. Hashing is deliberately slow, so it runs on tokio's blocking pool (never
//! on an executor thread) and a semaphore bounds how many run at once: each
//! one holds `m_cost` of memory, and a burst of log-ins must not exhaust it.
//!
//! Log-ins and registrations have priority: other hashing (the password
//! checks of `me.change_password` and `me.delete`) may take at most half of
//! the slots, so however many of those are queued, a log-in waits for at
//! most that half to finish.

use crate::error::internal;
use crate::HashCost;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use ferrogram_core::ApiError;
use std::sync::OnceLock;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Salt of the throw-away hash computed for unknown accounts. Its value does
/// not matter; the work does.
const DUMMY_SALT: &[u8; 16] = b"ferrogram-dummy!";

/// Who a hash is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// Logging in or registering: may use every slot.
    Login,
    /// Anything else: at most half of the slots.
    Other,
}

/// The hashing slots: `all` bounds every hash, `others` the non-login ones.
pub(crate) struct Slots {
    all: Semaphore,
    others: Semaphore,
}

/// Both permits of one running hash.
pub(crate) struct Slot<'a> {
    _other: Option<SemaphorePermit<'a>>,
    _any: SemaphorePermit<'a>,
}

impl Slots {
    /// `total` slots, of which non-login hashes take at most half (at
    /// least one).
    pub(crate) fn new(total: usize) -> Self {
        let total = total.max(1);
        Self {
            all: Semaphore::new(total),
            others: Semaphore::new((total / 2).max(1)),
        }
    }

    pub(crate) async fn acquire(&self, priority: Priority) -> Result<Slot<'_>, ApiError> {
        // The cap on other hashes is taken first, so they never queue in
        // front of log-ins for more than their share of `all`.
        let other = match priority {
            Priority::Login => None,
            Priority::Other => Some(self.others.acquire().await.map_err(|e| internal(&e))?),
        };
        let any = self.all.acquire().await.map_err(|e| internal(&e))?;
        Ok(Slot {
            _other: other,
            _any: any,
        })
    }

    /// Like `acquire`, without waiting (for tests).
    #[cfg(test)]
    fn try_acquire(&self, priority: Priority) -> Option<Slot<'_>> {
        let other = match priority {
            Priority::Login => None,
            Priority::Other => Some(self.others.try_acquire().ok()?),
        };
        Some(Slot {
            _other: other,
            _any: self.all.try_acquire().ok()?,
        })
    }
}

/// One slot per core: more concurrent hashes would only queue for CPU
/// while holding their memory.
fn hash_slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| {
        Slots::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
    })
}

fn hasher(cost: HashCost) -> Result<Argon2<'static>, ApiError> {
    let params = Params::new(cost.m_cost_kib, cost.t_cost, cost.p_cost, None)
        .map_err(|e| internal(&format_args!("invalid auth hash cost in settings: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Runs `work` on the blocking pool while holding a hashing slot.
async fn run_limited<T: Send + 'static>(
    priority: Priority,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let _slot = hash_slots().acquire(priority).await?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| internal(&e))?
}

/// Hashes `auth_key` with a fresh random salt; returns the PHC string.
pub(crate) async fn hash(
    priority: Priority,
    cost: HashCost,
    auth_key: Vec<u8>,
) -> Result<String, ApiError> {
    let salt: [u8; 16] = rand::random();
    run_limited(priority, move || {
        let phc = hasher(cost)?
            .hash_password_with_salt(&auth_key, &salt)
            .map_err(|e| internal(&e))?;
        Ok(phc.to_string())
    })
    .await
}

/// Checks `auth_key` against a stored PHC string. With `None` (no such
/// account) it still does the same amount of work and answers `false`, so the
/// response time does not tell whether an account exists.
pub(crate) async fn verify(
    priority: Priority,
    cost: HashCost,
    auth_key: Vec<u8>,
    stored: Option<String>,
) -> Result<bool, ApiError> {
    run_limited(priority, move || {
        let argon2 = hasher(cost)?;
        let Some(stored) = stored else {
            let _ = argon2.hash_password_with_salt(&auth_key, DUMMY_SALT);
            return Ok(false);
        };
        // The parameters come from the stored string, so hashes made under an
        // older cost setting keep working.
        let parsed = PasswordHash::new(&stored).map_err(|e| internal(&e))?;
        Ok(argon2.verify_password(&auth_key, &parsed).is_ok())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: HashCost = HashCost {
        m_cost_kib: 8,
        t_cost: 1,
        p_cost: 1,
    };

    #[tokio::test]
    async fn hash_then_verify() {
        let phc = hash(Priority::Login, CHEAP, vec![1; 32]).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
        assert!(
            verify(Priority::Other, CHEAP, vec![1; 32], Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify(Priority::Other, CHEAP, vec![2; 32], Some(phc.clone()))
                .await
                .unwrap()
        );
        // a different configured cost does not break existing hashes
        let other = HashCost { t_cost: 2, ..CHEAP };
        assert!(verify(Priority::Login, other, vec![1; 32], Some(phc))
            .await
            .unwrap());
        // salts are random
        assert_ne!(
            hash(Priority::Login, CHEAP, vec![1; 32]).await.unwrap(),
            hash(Priority::Login, CHEAP, vec![1; 32]).await.unwrap()
        );
    }

    #[test]
    fn other_hashes_never_take_the_slots_log_ins_need() {
        let slots = Slots::new(4);
        let a = slots.try_acquire(Priority::Other).expect("first other");
        let b = slots.try_acquire(Priority::Other).expect("second other");
        // others are capped at half of the slots ...
        assert!(slots.try_acquire(Priority::Other).is_none());
        // ... so log-ins still find the other half
        let c = slots.try_acquire(Priority::Login).expect("login");
        let d = slots.try_acquire(Priority::Login).expect("login");
        assert!(slots.try_acquire(Priority::Login).is_none());
        drop((a, c));
        assert!(slots.try_acquire(Priority::Other).is_some());
        drop((b, d));
        // log-ins may use every slot
        let all: Vec<_> = (0..4)
            .map(|_| slots.try_acquire(Priority::Login).expect("login"))
            .collect();
        assert!(slots.try_acquire(Priority::Other).is_none());
        drop(all);
        // a single slot is shared (others get at least one)
        let one = Slots::new(1);
        assert!(one.try_acquire(Priority::Other).is_some());
    }

    #[tokio::test]
    async fn unknown_account_is_a_plain_false() {
        assert!(!verify(Priority::Other, CHEAP, vec![1; 32], None)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn broken_settings_or_hashes_are_internal_errors() {
        let zero = HashCost {
            m_cost_kib: 0,
            ..CHEAP
        };
        assert_eq!(
            hash(Priority::Login, zero, vec![1; 32])
                .await
                .unwrap_err()
                .code,
            ferrogram_core::ErrorCode::Internal
        );
        let err = verify(
            Priority::Other,
            CHEAP,
            vec![1; 32],
            Some("not a phc string".into()),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, ferrogram_core::ErrorCode::Internal);
    }
}
