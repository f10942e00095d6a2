//! Email verification: one pending code + link token per account, stored
//! only as hashes, with expiry and a count of wrong attempts; and the resend
//! cooldown per address.

use crate::StorageError;
use ferrogram_core::ids::{Timestamp, UserId};
use rusqlite::{params, Connection, OptionalExtension, Row};

pub struct NewVerification {
    pub user_id: UserId,
    /// Keyed hash of the 6-digit code.
    pub code_hash: [u8; 32],
    /// SHA-256 of the link token.
    pub token_hash: [u8; 32],
    pub sent_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Clone)]
pub struct Verification {
    pub user_id: UserId,
    pub code_hash: Vec<u8>,
    pub attempts: u32,
    pub sent_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Verification {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

/// Hashes are left out: they are only useful to someone guessing codes.
impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verification")
            .field("user_id", &self.user_id)
            .field("attempts", &self.attempts)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Verification> {
    Ok(Verification {
        user_id: UserId(row.get(0)?),
        code_hash: row.get(1)?,
        attempts: row.get(2)?,
        sent_at: row.get(3)?,
        expires_at: row.get(4)?,
    })
}

const COLUMNS: &str = "user_id, code_hash, attempts, sent_at, expires_at";

/// Stores a new code and token for the account, replacing (and so voiding)
/// any earlier one, with the attempt count back at zero.
pub fn upsert(conn: &Connection, v: &NewVerification) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO email_verifications (user_id, code_hash, token_hash, attempts, sent_at, expires_at) \
         VALUES (?1, ?2, ?3, 0, ?4, ?5) \
         ON CONFLICT (user_id) DO UPDATE SET code_hash = excluded.code_hash, \
         token_hash = excluded.token_hash, attempts = 0, sent_at = excluded.sent_at, \
         expires_at = excluded.expires_at",
        params![
            v.user_id.0,
            v.code_hash.as_slice(),
            v.token_hash.as_slice(),
            v.sent_at,
            v.expires_at
        ],
    )?;
    Ok(())
}

pub fn for_user(conn: &Connection, user_id: UserId) -> Result<Option<Verification>, StorageError> {
    let sql = format!("SELECT {COLUMNS} FROM email_verifications WHERE user_id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([user_id.0], from_row)
        .optional()?)
}

/// The pending verification whose link token hashes to `token_hash`. The
/// lookup compares SHA-256 values of 256-bit random tokens through an index;
/// its timing can at most reveal a prefix of a hash, which does not help
/// anyone find a token.
pub fn by_token_hash(
    conn: &Connection,
    token_hash: &[u8],
) -> Result<Option<Verification>, StorageError> {
    let sql = format!("SELECT {COLUMNS} FROM email_verifications WHERE token_hash = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([token_hash], from_row)
        .optional()?)
}

/// Counts one wrong code; returns the new number of attempts (0 if there is
/// no pending verification).
pub fn record_failed_attempt(conn: &Connection, user_id: UserId) -> Result<u32, StorageError> {
    Ok(conn
        .prepare_cached(
            "UPDATE email_verifications SET attempts = attempts + 1 WHERE user_id = ?1 RETURNING attempts",
        )?
        .query_row([user_id.0], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Removes the pending verification (used: codes are single use).
pub fn delete(conn: &Connection, user_id: UserId) -> Result<bool, StorageError> {
    Ok(conn.execute(
        "DELETE FROM email_verifications WHERE user_id = ?1",
        [user_id.0],
    )? == 1)
}

/// When a verification mail was last requested for the address behind
/// `email_key`, if within the table's retention.
pub fn cooldown_last_sent(
    conn: &Connection,
    email_key: &[u8],
) -> Result<Option<Timestamp>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT last_sent_at FROM resend_cooldowns WHERE email_key = ?1")?
        .query_row([email_key], |r| r.get(0))
        .optional()?)
}

/// Records a send for `email_key` at `now` and forgets sends older than
/// `prune_before` (their cooldown is over, so they decide nothing).
pub fn record_cooldown(
    conn: &Connection,
    email_key: &[u8],
    now: Timestamp,
    prune_before: Timestamp,
) -> Result<(), StorageError> {
    conn.execute(
        "DELETE FROM resend_cooldowns WHERE last_sent_at < ?1",
        [prune_before],
    )?;
    conn.execute(
        "INSERT INTO resend_cooldowns (email_key, last_sent_at) VALUES (?1, ?2) \
         ON CONFLICT (email_key) DO UPDATE SET last_sent_at = excluded.last_sent_at",
        params![email_key, now],
    )?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_support::temp_storage;
    use crate::users;

    /// Verification number `n`: code hash `[n; 32]`, token hash `[n + 100; 32]`,
    /// sent at 1000, expiring at 100_000.
    pub fn new_verification(user: UserId, n: u8) -> NewVerification {
        NewVerification {
            user_id: user,
            code_hash: [n; 32],
            token_hash: [n.wrapping_add(100); 32],
            sent_at: Timestamp::from_millis(1000),
            expires_at: Timestamp::from_millis(100_000),
        }
    }

    #[test]
    fn upsert_replaces_and_resets_attempts() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                let alice = users::insert(conn, &users::tests::new_user("a@x.org", "alice"))?;
                assert!(for_user(conn, alice)?.is_none());
                upsert(conn, &new_verification(alice, 1))?;
                let v = for_user(conn, alice)?.unwrap();
                assert_eq!(
                    (v.code_hash.clone(), v.attempts, v.sent_at, v.expires_at),
                    (
                        vec![1; 32],
                        0,
                        Timestamp::from_millis(1000),
                        Timestamp::from_millis(100_000)
                    )
                );
                assert!(
                    !v.is_expired(Timestamp::from_millis(99_999))
                        && v.is_expired(Timestamp::from_millis(100_000))
                );
                assert_eq!(record_failed_attempt(conn, alice)?, 1);
                assert_eq!(record_failed_attempt(conn, alice)?, 2);
                assert_eq!(for_user(conn, alice)?.unwrap().attempts, 2);

                let mut newer = new_verification(alice, 2);
                newer.sent_at = Timestamp::from_millis(5000);
                upsert(conn, &newer)?;
                let v = for_user(conn, alice)?.unwrap();
                assert_eq!(
                    (v.code_hash, v.attempts, v.sent_at),
                    (vec![2; 32], 0, Timestamp::from_millis(5000))
                );
                // the old link token is void, the new one works
                assert!(by_token_hash(conn, &[101; 32])?.is_none());
                assert_eq!(by_token_hash(conn, &[102; 32])?.unwrap().user_id, alice);
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }

    #[test]
    fn delete_makes_it_single_use() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                let alice = users::insert(conn, &users::tests::new_user("a@x.org", "alice"))?;
                upsert(conn, &new_verification(alice, 1))?;
                assert!(delete(conn, alice)?);
                assert!(!delete(conn, alice)?);
                assert!(for_user(conn, alice)?.is_none());
                assert!(by_token_hash(conn, &[101; 32])?.is_none());
                assert_eq!(record_failed_attempt(conn, alice)?, 0);
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }

    #[test]
    fn verification_needs_an_existing_user() {
        let (_dir, storage) = temp_storage();
        let err = storage
            .with_conn(|conn| upsert(conn, &new_verification(UserId(42), 1)))
            .unwrap_err();
        assert!(
            matches!(err, StorageError::Sqlite(_)),
            "foreign key enforced: {err}"
        );
    }

    #[test]
    fn cooldowns_record_update_and_prune() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                assert_eq!(cooldown_last_sent(conn, b"k1")?, None);
                record_cooldown(conn, b"k1", Timestamp::from_millis(1000), Timestamp::EPOCH)?;
                record_cooldown(conn, b"k2", Timestamp::from_millis(2000), Timestamp::EPOCH)?;
                assert_eq!(
                    cooldown_last_sent(conn, b"k1")?,
                    Some(Timestamp::from_millis(1000))
                );
                record_cooldown(conn, b"k1", Timestamp::from_millis(3000), Timestamp::EPOCH)?;
                assert_eq!(
                    cooldown_last_sent(conn, b"k1")?,
                    Some(Timestamp::from_millis(3000))
                );
                // k2 (sent at 2000) is older than the prune horizon
                record_cooldown(
                    conn,
                    b"k3",
                    Timestamp::from_millis(4000),
                    Timestamp::from_millis(2500),
                )?;
                assert_eq!(cooldown_last_sent(conn, b"k2")?, None);
                assert_eq!(
                    cooldown_last_sent(conn, b"k1")?,
                    Some(Timestamp::from_millis(3000))
                );
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }
}
