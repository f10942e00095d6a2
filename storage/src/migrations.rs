//! Numbered SQL migrations, tracked with `PRAGMA user_version`.
//!
//! Migration `n` (1-based) is `MIGRATIONS[n - 1]`; after it commits,
//! `user_version` is `n`. Each migration and its version bump commit together,
//! so a crash mid-migration leaves the previous version intact. Released
//! migrations are never edited: a change is a new file.

use crate::StorageError;
use rusqlite::{Connection, TransactionBehavior};

/// Every migration, in order. Add new files at the end.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_accounts.sql"),
    include_str!("../migrations/0002_chats.sql"),
    include_str!("../migrations/0003_chat_events_rowid.sql"),
    include_str!("../migrations/0004_delivery_receipts.sql"),
    include_str!("../migrations/0005_binary_envelopes.sql"),
    include_str!("../migrations/0006_group_invitations.sql"),
    include_str!("../migrations/0007_account_storage.sql"),
];

/// The schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

pub fn current_version(conn: &Connection) -> Result<i64, StorageError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Applies every migration newer than the database's `user_version`. Refuses
/// a database from a newer build instead of running against a schema it does
/// not understand.
pub fn apply(conn: &mut Connection) -> Result<(), StorageError> {
    let known = latest_version();
    let found = current_version(conn)?;
    if found > known {
        return Err(StorageError::SchemaTooNew { found, known });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
        // IMMEDIATE takes the write lock up front, so two processes starting on
        // the same file cannot both run the same migration.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read under the lock: another process may have migrated meanwhile.
        if current_version(&tx)? >= version {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Storage;

    fn table_names(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn fresh_database_gets_every_migration() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path().join("fresh.sqlite3"), 2).unwrap();
        storage
            .with_conn(|conn| {
                assert_eq!(current_version(conn)?, latest_version());
                assert_eq!(
                    table_names(conn),
                    [
                        "account_storage",
                        "chat_events",
                        "chat_invitations",
                        "chat_members",
                        "chats",
                        "direct_chats",
                        "email_verifications",
                        "resend_cooldowns",
                        "sessions",
                        "users"
                    ]
                );
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }

    #[test]
    fn reopening_is_idempotent_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("again.sqlite3");
        {
            let storage = Storage::open(&path, 1).unwrap();
            storage
                .with_conn(|conn| {
                    conn.execute(
                        "INSERT INTO resend_cooldowns (email_key, last_sent_at) VALUES (x'01', 5)",
                        [],
                    )?;
                    Ok::<_, StorageError>(())
                })
                .unwrap();
        }
        for _ in 0..2 {
            let storage = Storage::open(&path, 1).unwrap();
            let (version, rows) = storage
                .with_conn(|conn| {
                    let rows: i64 =
                        conn.query_row("SELECT count(*) FROM resend_cooldowns", [], |r| r.get(0))?;
                    Ok::<_, StorageError>((current_version(conn)?, rows))
                })
                .unwrap();
            assert_eq!(version, latest_version());
            assert_eq!(rows, 1);
        }
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.sqlite3");
        drop(Storage::open(&path, 1).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 3)
            .unwrap();
        drop(conn);
        let Err(err) = Storage::open(&path, 1) else {
            panic!("a newer schema must be refused");
        };
        assert!(
            matches!(err, StorageError::SchemaTooNew { found, known } if found == latest_version() + 3 && known == latest_version()),
            "{err}"
        );
        assert!(err.to_string().contains("newer than this server knows"));
    }

    #[test]
    fn the_account_storage_migration_counts_what_was_stored_before() {
        // A database just before the account_storage migration (the last
        // one): user 1 sent two messages (100 and 50 bytes) and an edit (30),
        // a rename (not counted); user 9 no longer exists.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("before.sqlite3");
        let before = MIGRATIONS.len() - 1;
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..before] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", before as i64)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO users (id, email, handle, display_name, auth_hash, kdf_salt, kdf_alg,
                     kdf_m_cost, kdf_t_cost, kdf_p_cost, sign_key, enc_key, sealed_keys,
                     created_at, updated_at)
                     VALUES (1, 'a@x', 'alice', 'A', 'h', x'00', 'argon2id', 64, 1, 1,
                     x'00', x'00', x'00', 1, 1);
                 INSERT INTO chats (id, kind, title, created_at, last_seq) VALUES (5, 'group', 't', 1, 5);
                 INSERT INTO chat_events (chat_id, seq, sender, at, kind, client_msg_id, body)
                     VALUES (5, 1, 1, 2, 'message', 'm1', zeroblob(100)),
                            (5, 2, 1, 2, 'message', 'm2', zeroblob(50)),
                            (5, 4, 9, 2, 'message', 'm3', zeroblob(70));
                 INSERT INTO chat_events (chat_id, seq, sender, at, kind, target_seq, client_msg_id, body)
                     VALUES (5, 3, 1, 2, 'edit', 1, 'e1', zeroblob(30));
                 INSERT INTO chat_events (chat_id, seq, sender, at, kind, body)
                     VALUES (5, 5, 1, 2, 'renamed', '{\"type\":\"renamed\",\"title\":\"t\"}');",
            )
            .unwrap();
        }
        let storage = Storage::open(&path, 1).unwrap();
        let conn = storage.pool.get().unwrap();
        assert_eq!(current_version(&conn).unwrap(), latest_version());
        let rows: Vec<(i64, i64)> = conn
            .prepare("SELECT user_id, stored_bytes FROM account_storage ORDER BY user_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [(1, 180)]);
    }

    #[test]
    fn the_binary_envelope_migration_keeps_earlier_rows() {
        // A version 4 database with a JSON message row, as servers before
        // 0005 stored it; after the upgrade it reads back unchanged.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.sqlite3");
        let body = r#"{"type":"renamed","title":"before 0005"}"#;
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..4] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 4).unwrap();
            conn.execute_batch(&format!(
                "INSERT INTO chats (id, kind, title, created_at, last_seq) VALUES (5, 'group', 't', 1, 1);
                 INSERT INTO chat_events (chat_id, seq, sender, at, kind, body)
                     VALUES (5, 1, 9, 2, 'renamed', '{body}');"
            ))
            .unwrap();
        }
        let storage = Storage::open(&path, 1).unwrap();
        let conn = storage.pool.get().unwrap();
        assert_eq!(current_version(&conn).unwrap(), latest_version());
        let event = crate::events::by_seq(
            &conn,
            ferrogram_core::ids::ChatId(5),
            ferrogram_core::ids::Seq::new(1),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            event.body,
            ferrogram_core::proto::EventBody::Renamed {
                title: "before 0005".into()
            }
        );
        // the indexes are back
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'chat_events' \
                 AND name IN ('chat_events_seq', 'chat_events_client_msg', 'chat_events_target')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 3);
    }

    #[test]
    fn a_partial_upgrade_resumes_from_user_version() {
        // A database stamped with version 1 but missing later tables must get
        // exactly the later migrations; with one migration today this checks
        // that version 1 is not re-run (its CREATE TABLEs would fail).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partial.sqlite3");
        {
            let mut conn = Connection::open(&path).unwrap();
            apply(&mut conn).unwrap();
            apply(&mut conn).unwrap();
            assert_eq!(current_version(&conn).unwrap(), latest_version());
        }
        assert!(Storage::open(&path, 1).is_ok());
    }
}
