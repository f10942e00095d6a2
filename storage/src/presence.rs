//! What the database knows about presence: when an account last used one of
//! its sessions. The gateway knows who is online right now; this is the
//! "last seen" that survives a restart.

use crate::StorageError;
use ferrogram_core::ids::{Timestamp, UserId};
use rusqlite::Connection;

/// The latest `last_seen_at` of the user's sessions (refreshed, throttled,
/// as requests authenticate). `None` without sessions.
pub fn last_active(conn: &Connection, user: UserId) -> Result<Option<Timestamp>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT max(last_seen_at) FROM sessions WHERE user_id = ?1")?
        .query_row([user.0], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions;
    use crate::test_support::temp_storage;
    use crate::users;

    #[test]
    fn last_active_is_the_latest_session_use() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                let id = users::insert(conn, &users::tests::new_user("a@x.org", "alice"))?;
                assert_eq!(last_active(conn, id)?, None);
                sessions::insert(conn, &sessions::tests::new_session(id, 1))?;
                sessions::insert(conn, &sessions::tests::new_session(id, 2))?;
                // last seen starts at creation: 1000 and 2000
                assert_eq!(last_active(conn, id)?, Some(Timestamp::from_millis(2000)));
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }
}
