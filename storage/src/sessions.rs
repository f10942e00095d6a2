//! Login sessions. A session has a public id (listed, revoked) and a bearer
//! token of which only the SHA-256 is stored: a stolen database does not
//! yield usable tokens.

use crate::StorageError;
use ferrogram_core::ids::{SessionId, Timestamp, UserId};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// `last_seen_at` is written at most this often per session, so that
/// authenticating every request is a read, not a write.
pub const TOUCH_INTERVAL_MS: i64 = 60_000;

pub struct NewSession {
    pub id: SessionId,
    pub user_id: UserId,
    /// SHA-256 of the bearer token.
    pub token_hash: [u8; 32],
    pub device_name: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    pub device_name: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
}

impl SessionRecord {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// Whether `touch` would write now.
    pub fn needs_touch(&self, now: Timestamp) -> bool {
        now.millis_since(self.last_seen_at) >= TOUCH_INTERVAL_MS
    }
}

/// A session found by its token, with what authentication needs of its user.
#[derive(Clone)]
pub struct TokenMatch {
    pub session: SessionRecord,
    /// The stored hash, for a constant-time comparison by the caller.
    pub token_hash: Vec<u8>,
    pub user_verified: bool,
}

const SESSION_COLUMNS: &str =
    "s.id, s.user_id, s.device_name, s.created_at, s.last_seen_at, s.expires_at";

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: SessionId(row.get(0)?),
        user_id: UserId(row.get(1)?),
        device_name: row.get(2)?,
        created_at: row.get(3)?,
        last_seen_at: row.get(4)?,
        expires_at: row.get(5)?,
    })
}

pub fn insert(conn: &Connection, session: &NewSession) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO sessions (id, user_id, token_hash, device_name, created_at, last_seen_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        params![
            session.id.0,
            session.user_id.0,
            session.token_hash.as_slice(),
            session.device_name,
            session.created_at,
            session.expires_at,
        ],
    )?;
    Ok(())
}

/// The session whose token hashes to `token_hash`, expired or not (the
/// caller tells "expired" from "unknown").
pub fn by_token_hash(
    conn: &Connection,
    token_hash: &[u8],
) -> Result<Option<TokenMatch>, StorageError> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS}, s.token_hash, u.verified_at IS NOT NULL \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([token_hash], |row| {
            Ok(TokenMatch {
                session: session_from_row(row)?,
                token_hash: row.get(6)?,
                user_verified: row.get(7)?,
            })
        })
        .optional()?)
}

pub fn by_id(conn: &Connection, id: &SessionId) -> Result<Option<SessionRecord>, StorageError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([&id.0], session_from_row)
        .optional()?)
}

/// Records activity, at most once per [`TOUCH_INTERVAL_MS`]. Returns whether
/// it wrote.
pub fn touch(conn: &Connection, id: &SessionId, now: Timestamp) -> Result<bool, StorageError> {
    let changed = conn.execute(
        "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at <= ?2 - ?3",
        params![id.0, now, TOUCH_INTERVAL_MS],
    )?;
    Ok(changed == 1)
}

/// A user's sessions, most recently active first.
pub fn list_for_user(
    conn: &Connection,
    user_id: UserId,
) -> Result<Vec<SessionRecord>, StorageError> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = ?1 \
         ORDER BY s.last_seen_at DESC, s.created_at DESC"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([user_id.0], session_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes one session if it belongs to `user_id` (a user can never revoke
/// someone else's session, even knowing its id). Returns whether it did.
pub fn delete_own(
    conn: &Connection,
    user_id: UserId,
    id: &SessionId,
) -> Result<bool, StorageError> {
    let changed = conn.execute(
        "DELETE FROM sessions WHERE id = ?1 AND user_id = ?2",
        params![id.0, user_id.0],
    )?;
    Ok(changed == 1)
}

/// Deletes every session of `user_id` except `keep`. Returns how many.
pub fn delete_others(
    conn: &Connection,
    user_id: UserId,
    keep: &SessionId,
) -> Result<usize, StorageError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND id <> ?2",
        params![user_id.0, keep.0],
    )?)
}

/// Deletes every session of `user_id`. Returns how many.
pub fn delete_all(conn: &Connection, user_id: UserId) -> Result<usize, StorageError> {
    Ok(conn.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id.0])?)
}

/// Housekeeping: removes sessions that expired before `now`.
pub fn delete_expired(conn: &Connection, now: Timestamp) -> Result<usize, StorageError> {
    Ok(conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?)
}

/// Removes one user's expired sessions (done at log-in, so an account's list
/// never grows without bound even if housekeeping never runs).
pub fn delete_expired_for_user(
    conn: &Connection,
    user_id: UserId,
    now: Timestamp,
) -> Result<usize, StorageError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND expires_at <= ?2",
        params![user_id.0, now],
    )?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_support::temp_storage;
    use crate::users;

    /// Session number `n` of `user`: id `s{n}`, token hash `[n; 32]`,
    /// created at `n * 1000`, expiring at 1_000_000.
    pub fn new_session(user: UserId, n: u8) -> NewSession {
        NewSession {
            id: SessionId(format!("s{n}")),
            user_id: user,
            token_hash: [n; 32],
            device_name: format!("device {n}"),
            created_at: Timestamp::from_millis(i64::from(n) * 1000),
            expires_at: Timestamp::from_millis(1_000_000),
        }
    }

    fn two_users(conn: &Connection) -> (UserId, UserId) {
        let a = users::insert(conn, &users::tests::new_user("a@x.org", "alice")).unwrap();
        let b = users::insert(conn, &users::tests::new_user("b@x.org", "bob")).unwrap();
        (a, b)
    }

    #[test]
    fn insert_and_find_by_token_hash() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                let (alice, _) = two_users(conn);
                insert(conn, &new_session(alice, 1))?;
                let found = by_token_hash(conn, &[1; 32])?.unwrap();
                assert_eq!(found.session.id, SessionId("s1".into()));
                assert_eq!(found.session.user_id, alice);
                assert_eq!(found.session.device_name, "device 1");
                assert_eq!(found.session.last_seen_at, found.session.created_at);
                assert_eq!(found.token_hash, vec![1; 32]);
                assert!(!found.user_verified);
                assert!(by_token_hash(conn, &[2; 32])?.is_none());

                users::mark_verified(conn, alice, Timestamp::from_millis(5))?;
                assert!(by_token_hash(conn, &[1; 32])?.unwrap().user_verified);
                assert_eq!(
                    by_id(conn, &SessionId("s1".into()))?.unwrap().user_id,
                    alice
                );
                assert!(by_id(conn, &SessionId("nope".into()))?.is_none());
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }

    #[test]
    fn expiry() {
        let s = SessionRecord {
            id: SessionId("x".into()),
            user_id: UserId(1),
            device_name: String::new(),
            created_at: Timestamp::EPOCH,
            last_seen_at: Timestamp::EPOCH,
            expires_at: Timestamp::from_millis(100),
        };
        assert!(!s.is_expired(Timestamp::from_millis(99)));
        assert!(s.is_expired(Timestamp::from_millis(100)));
        assert!(!s.needs_touch(Timestamp::from_millis(TOUCH_INTERVAL_MS - 1)));
        assert!(s.needs_touch(Timestamp::from_millis(TOUCH_INTERVAL_MS)));
    }

    #[test]
    fn touch_is_throttled() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                let (alice, _) = two_users(conn);
                insert(conn, &new_session(alice, 1))?; // last seen 1000
                let id = SessionId("s1".into());
                assert!(!touch(
                    conn,
                    &id,
                    Timestamp::from_millis(1000 + TOUCH_INTERVAL_MS - 1)
                )?);
                assert_eq!(
                    by_id(conn, &id)?.unwrap().last_seen_at,
                    Timestamp::from_millis(1000)
                );
                assert!(touch(
                    conn,
                    &id,
                    Timestamp::from_millis(1000 + TOUCH_INTERVAL_MS)
                )?);
                assert_eq!(
                    by_id(conn, &id)?.unwrap().last_seen_at,
                    Timestamp::from_millis(1000 + TOUCH_INTERVAL_MS)
                );
                assert!(!touch(
                    conn,
                    &id,
                    Timestamp::from_millis(1000 + TOUCH_INTERVAL_MS + 5)
                )?);
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }

    #[test]
    fn list_and_delete() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                let (alice, bob) = two_users(conn);
                for n in 1..=3 {
                    insert(conn, &new_session(alice, n))?;
                }
                insert(conn, &new_session(bob, 9))?;
                touch(
                    conn,
                    &SessionId("s1".into()),
                    Timestamp::from_millis(500_000),
                )?;
                let ids: Vec<String> = list_for_user(conn, alice)?
                    .into_iter()
                    .map(|s| s.id.0)
                    .collect();
                assert_eq!(ids, ["s1", "s3", "s2"]);

                // bob cannot delete alice's session
                assert!(!delete_own(conn, bob, &SessionId("s2".into()))?);
                assert!(delete_own(conn, alice, &SessionId("s2".into()))?);
                assert!(!delete_own(conn, alice, &SessionId("s2".into()))?);

                insert(conn, &new_session(alice, 4))?;
                assert_eq!(delete_others(conn, alice, &SessionId("s4".into()))?, 2);
                let ids: Vec<String> = list_for_user(conn, alice)?
                    .into_iter()
                    .map(|s| s.id.0)
                    .collect();
                assert_eq!(ids, ["s4"]);
                assert_eq!(delete_all(conn, alice)?, 1);
                assert!(list_for_user(conn, alice)?.is_empty());
                assert_eq!(list_for_user(conn, bob)?.len(), 1);
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }

    #[test]
    fn expired_sessions_are_pruned() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                let (alice, _) = two_users(conn);
                let mut short = new_session(alice, 1);
                short.expires_at = Timestamp::from_millis(10_000);
                insert(conn, &short)?;
                insert(conn, &new_session(alice, 2))?;
                assert_eq!(delete_expired(conn, Timestamp::from_millis(9_999))?, 0);
                assert_eq!(delete_expired(conn, Timestamp::from_millis(10_000))?, 1);
                assert_eq!(list_for_user(conn, alice)?.len(), 1);

                let carol = users::insert(conn, &users::tests::new_user("c@x.org", "carol"))?;
                let mut carols = new_session(carol, 3);
                carols.expires_at = Timestamp::from_millis(10_000);
                insert(conn, &carols)?;
                insert(conn, &short)?;
                // only the named user's expired sessions go
                assert_eq!(
                    delete_expired_for_user(conn, alice, Timestamp::from_millis(20_000))?,
                    1
                );
                assert_eq!(list_for_user(conn, carol)?.len(), 1);
                assert_eq!(list_for_user(conn, alice)?.len(), 1);
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }
}
