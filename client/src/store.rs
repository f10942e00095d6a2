//! The local store of one account on one device: a small SQLite file.
//!
//! It holds what this device received, so a reconnect asks only for what is
//! missing and nothing is reported twice:
//! - `chats`: per chat, the seq up to which every event was processed
//!   (`last_seq`); a reconnect resumes from there;
//! - `messages`: the decrypted messages (the plaintext never leaves this
//!   device; the file is created with mode 0600 in a 0700 folder), with how
//!   far each was trusted;
//! - `envelope_ids`: every (chat, sender, client message id) seen, so a
//!   replayed envelope is recognised;
//! - `pins`: each contact's public keys as first seen (trust on first use),
//!   whether the user verified them, and a key change waiting to be accepted.
//!
//! Numbered migrations are tracked with `PRAGMA user_version`, like the
//! server's. All access goes through [`Store::run`] on a blocking thread.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use ferrogram_core::b64::B64;
use ferrogram_core::ids::{ChatId, Seq, Timestamp, UserId};
use ferrogram_core::proto::{MessagePayload, PublicKeys};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::addr::ServerAddr;
use crate::messages::{Message, MessageDeletion, MessageEdit, Verification};

const MIGRATIONS: &[&str] = &[r"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE chats (
    chat_id  INTEGER PRIMARY KEY,
    -- Every event up to this seq was processed (and reported once).
    last_seq INTEGER NOT NULL DEFAULT 0,
    -- 0 once this account is no longer a member.
    active   INTEGER NOT NULL DEFAULT 1
) STRICT;

CREATE TABLE messages (
    chat_id       INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    sender        INTEGER NOT NULL,
    client_msg_id TEXT    NOT NULL,
    sent_at       INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    -- Fingerprint of the keys that signed the current version.
    sender_key    BLOB    NOT NULL,
    -- MessagePayload as JSON; NULL when invalid or deleted.
    payload       TEXT,
    -- Verification as JSON.
    verification  TEXT    NOT NULL,
    edited_seq    INTEGER,
    deleted       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, seq)
) WITHOUT ROWID, STRICT;

CREATE TABLE envelope_ids (
    chat_id       INTEGER NOT NULL,
    sender        INTEGER NOT NULL,
    client_msg_id TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    PRIMARY KEY (chat_id, sender, client_msg_id)
) WITHOUT ROWID, STRICT;

CREATE TABLE pins (
    user_id       INTEGER PRIMARY KEY,
    sign_key      BLOB    NOT NULL,
    enc_key       BLOB    NOT NULL,
    verified      INTEGER NOT NULL DEFAULT 0,
    pinned_at     INTEGER NOT NULL,
    -- Other keys the server now lists, until the user accepts them.
    pending_sign  BLOB,
    pending_enc   BLOB,
    pending_since INTEGER
) STRICT;
"];

/// What can go wrong with the local store. Each failure keeps its cause as
/// its [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's folder or file could not be created or opened.
    #[error("cannot {action} {}: {source}", .path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// SQLite could not open the file.
    #[error("cannot open {}: {source}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A query or a transaction failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer version of this library.
    #[error("the store was written by a newer version (schema {found}, this one knows {known})")]
    NewerSchema { found: i64, known: i64 },
    /// The file belongs to another account.
    #[error("this store belongs to user {found}, not {owner}")]
    OtherOwner { found: String, owner: UserId },
    /// A value could not be written as JSON.
    #[error("cannot encode a stored value: {0}")]
    Encode(#[source] serde_json::Error),
    /// A stored JSON value does not read back (a damaged or hand-edited file).
    #[error("damaged {what}: {source}")]
    Damaged {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A row that was just written is not there.
    #[error("{0} vanished")]
    Vanished(&'static str),
    /// The blocking task running the store's work panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The local store. Cheap to clone (one shared connection).
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A contact's pinned keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pin {
    pub keys: PublicKeys,
    pub verified: bool,
    /// Keys the server lists now, different from `keys`, not yet accepted.
    pub pending: Option<PublicKeys>,
}

/// Where a chat stands in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatPosition {
    pub chat_id: ChatId,
    pub last_seq: Seq,
    pub active: bool,
}

impl Store {
    /// Opens (or creates) the store at `path` for account `owner`; a store
    /// of another account is refused.
    pub fn open(path: impl AsRef<Path>, owner: UserId) -> Result<Store, StoreError> {
        let path = path.as_ref().to_owned();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| StoreError::File {
                    action: "create",
                    path: dir.to_owned(),
                    source,
                })?;
        }
        // Create the file private before SQLite opens it; its -wal and -shm
        // files take the same mode.
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| StoreError::File {
                action: "open",
                path: path.clone(),
                source,
            })?;
        let mut conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrate(&mut conn)?;
        bind_owner(&conn, owner)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    /// The usual file for `user` on `server` under a data folder:
    /// `<data_dir>/<host>_<port>/user-<id>.sqlite3`.
    pub fn path_for(data_dir: &Path, server: &ServerAddr, user: UserId) -> PathBuf {
        let host: String = server
            .host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        data_dir
            .join(format!("{host}_{}", server.port))
            .join(format!("user-{}.sqlite3", user.0))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the connection on a blocking thread.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut guard)
        })
        .await?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StoreError::NewerSchema { found, known });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn bind_owner(conn: &Connection, owner: UserId) -> Result<(), StoreError> {
    match meta(conn, "owner")? {
        Some(found) if found != owner.0.to_string() => Err(StoreError::OtherOwner { found, owner }),
        Some(_) => Ok(()),
        None => set_meta(conn, "owner", &owner.0.to_string()),
    }
}

pub(crate) fn meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

// ---- chats and positions ----

pub(crate) fn positions(conn: &Connection) -> Result<Vec<ChatPosition>, StoreError> {
    let mut stmt = conn.prepare("SELECT chat_id, last_seq, active FROM chats ORDER BY chat_id")?;
    let rows = stmt.query_map([], |r| {
        Ok(ChatPosition {
            chat_id: ChatId(r.get(0)?),
            last_seq: r.get(1)?,
            active: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn last_seq(conn: &Connection, chat: ChatId) -> Result<Seq, StoreError> {
    Ok(conn
        .query_row(
            "SELECT last_seq FROM chats WHERE chat_id = ?1",
            [chat.0],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(Seq::ZERO))
}

pub(crate) fn set_active(conn: &Connection, chat: ChatId, active: bool) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO chats (chat_id, active) VALUES (?1, ?2)
         ON CONFLICT (chat_id) DO UPDATE SET active = excluded.active",
        params![chat.0, active],
    )?;
    Ok(())
}

/// Records that every event of `chat` up to `seq` was processed.
pub(crate) fn advance(conn: &Connection, chat: ChatId, seq: Seq) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO chats (chat_id, last_seq) VALUES (?1, ?2)
         ON CONFLICT (chat_id) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
        params![chat.0, seq],
    )?;
    Ok(())
}

// ---- messages ----

/// The seq at which this (chat, sender, client message id) was first seen.
pub(crate) fn envelope_seq(
    conn: &Connection,
    chat: ChatId,
    sender: UserId,
    client_msg_id: &str,
) -> Result<Option<Seq>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT seq FROM envelope_ids WHERE chat_id = ?1 AND sender = ?2 AND client_msg_id = ?3",
            params![chat.0, sender.0, client_msg_id],
            |r| r.get(0),
        )
        .optional()?)
}

pub(crate) fn record_envelope_id(
    conn: &Connection,
    chat: ChatId,
    sender: UserId,
    client_msg_id: &str,
    seq: Seq,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO envelope_ids (chat_id, sender, client_msg_id, seq)
         VALUES (?1, ?2, ?3, ?4)",
        params![chat.0, sender.0, client_msg_id, seq],
    )?;
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(StoreError::Encode)
}

pub(crate) fn insert_message(
    conn: &Connection,
    message: &Message,
    sender_key: &[u8],
) -> Result<(), StoreError> {
    let payload = message.payload.as_ref().map(to_json).transpose()?;
    conn.execute(
        "INSERT OR IGNORE INTO messages (chat_id, seq, sender, client_msg_id, sent_at, at,
             sender_key, payload, verification, edited_seq, deleted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            message.chat_id.0,
            message.seq,
            message.sender.0,
            message.client_msg_id,
            message.sent_at,
            message.at,
            sender_key,
            payload,
            to_json(&message.verification)?,
            message.edited_seq,
            message.deleted,
        ],
    )?;
    Ok(())
}

/// Applies an edit to its target (same author, not deleted). A flagged edit
/// never replaces a trusted version. Answers whether the target changed.
pub(crate) fn apply_edit(
    conn: &Connection,
    edit: &MessageEdit,
    sender_key: &[u8],
) -> Result<bool, StoreError> {
    let Some(target) = message(conn, edit.chat_id, edit.target_seq)? else {
        return Ok(false);
    };
    if target.sender != edit.sender || target.deleted {
        return Ok(false);
    }
    if target.verification.is_trusted() && !edit.verification.is_trusted() {
        conn.execute(
            "UPDATE messages SET edited_seq = ?3 WHERE chat_id = ?1 AND seq = ?2",
            params![edit.chat_id.0, edit.target_seq, edit.seq],
        )?;
        return Ok(true);
    }
    let payload = edit.payload.as_ref().map(to_json).transpose()?;
    conn.execute(
        "UPDATE messages SET payload = ?3, verification = ?4, edited_seq = ?5, sender_key = ?6
         WHERE chat_id = ?1 AND seq = ?2",
        params![
            edit.chat_id.0,
            edit.target_seq,
            payload,
            to_json(&edit.verification)?,
            edit.seq,
            sender_key,
        ],
    )?;
    Ok(true)
}

/// Deletes the target's content (only the author's own deletion counts).
pub(crate) fn apply_delete(
    conn: &Connection,
    deletion: &MessageDeletion,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE messages SET deleted = 1, payload = NULL
         WHERE chat_id = ?1 AND seq = ?2 AND sender = ?3",
        params![deletion.chat_id.0, deletion.target_seq, deletion.sender.0],
    )?;
    Ok(changed > 0)
}

fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Message, Option<String>, String)> {
    let payload: Option<String> = r.get(7)?;
    let verification: String = r.get(8)?;
    Ok((
        Message {
            chat_id: ChatId(r.get(0)?),
            seq: r.get(1)?,
            sender: UserId(r.get(2)?),
            client_msg_id: r.get(3)?,
            sent_at: r.get(4)?,
            at: r.get(5)?,
            payload: None,
            verification: Verification::Own,
            edited_seq: r.get(9)?,
            deleted: r.get(10)?,
        },
        payload,
        verification,
    ))
}

fn finish_message(
    (mut message, payload, verification): (Message, Option<String>, String),
) -> Result<Message, StoreError> {
    message.payload = payload
        .map(|p| serde_json::from_str::<MessagePayload>(&p))
        .transpose()
        .map_err(|source| StoreError::Damaged {
            what: "message payload",
            source,
        })?;
    message.verification =
        serde_json::from_str(&verification).map_err(|source| StoreError::Damaged {
            what: "verification state",
            source,
        })?;
    Ok(message)
}

const MESSAGE_COLUMNS: &str = "chat_id, seq, sender, client_msg_id, sent_at, at, sender_key, \
                               payload, verification, edited_seq, deleted";

pub(crate) fn message(
    conn: &Connection,
    chat: ChatId,
    seq: Seq,
) -> Result<Option<Message>, StoreError> {
    conn.query_row(
        &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = ?1 AND seq = ?2"),
        params![chat.0, seq],
        message_from_row,
    )
    .optional()?
    .map(finish_message)
    .transpose()
}

/// Up to `limit` messages before `before` (or the newest), oldest first.
pub(crate) fn messages(
    conn: &Connection,
    chat: ChatId,
    before: Option<Seq>,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = ?1 AND seq < ?2
         ORDER BY seq DESC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(
        params![chat.0, before.unwrap_or(Seq::MAX), limit],
        message_from_row,
    )?;
    let mut found = rows
        .map(|row| finish_message(row?))
        .collect::<Result<Vec<_>, _>>()?;
    found.reverse();
    Ok(found)
}

// ---- pins ----

pub(crate) fn pin(conn: &Connection, user: UserId) -> Result<Option<Pin>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT sign_key, enc_key, verified, pending_sign, pending_enc FROM pins
             WHERE user_id = ?1",
            [user.0],
            |r| {
                let pending_sign: Option<Vec<u8>> = r.get(3)?;
                let pending_enc: Option<Vec<u8>> = r.get(4)?;
                Ok(Pin {
                    keys: PublicKeys {
                        sign: B64(r.get(0)?),
                        enc: B64(r.get(1)?),
                    },
                    verified: r.get(2)?,
                    pending: pending_sign.zip(pending_enc).map(|(sign, enc)| PublicKeys {
                        sign: B64(sign),
                        enc: B64(enc),
                    }),
                })
            },
        )
        .optional()?)
}

/// Pins `keys` for `user` unless a pin exists; answers the pin in force.
pub(crate) fn pin_first_seen(
    conn: &Connection,
    user: UserId,
    keys: &PublicKeys,
) -> Result<Pin, StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO pins (user_id, sign_key, enc_key, pinned_at) VALUES (?1, ?2, ?3, ?4)",
        params![user.0, keys.sign.as_slice(), keys.enc.as_slice(), Timestamp::now()],
    )?;
    pin(conn, user)?.ok_or(StoreError::Vanished("a pin"))
}

/// Records `keys` as a change waiting for the user; true if it is new (so
/// the change is reported once per key).
pub(crate) fn set_pending(
    conn: &Connection,
    user: UserId,
    keys: &PublicKeys,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE pins SET pending_sign = ?2, pending_enc = ?3, pending_since = ?4
         WHERE user_id = ?1
           AND (pending_sign IS NULL OR pending_sign != ?2 OR pending_enc != ?3)",
        params![
            user.0,
            keys.sign.as_slice(),
            keys.enc.as_slice(),
            Timestamp::now()
        ],
    )?;
    Ok(changed > 0)
}

/// Makes the pending keys the pinned ones (not verified: a new key has not
/// been compared). Messages flagged for exactly those keys become trusted.
pub(crate) fn accept_pending(
    conn: &mut Connection,
    user: UserId,
    new_key_id: &[u8],
) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let changed = tx.execute(
        "UPDATE pins SET sign_key = pending_sign, enc_key = pending_enc, verified = 0,
             pinned_at = ?2, pending_sign = NULL, pending_enc = NULL, pending_since = NULL
         WHERE user_id = ?1 AND pending_sign IS NOT NULL",
        params![user.0, Timestamp::now()],
    )?;
    if changed > 0 {
        tx.execute(
            "UPDATE messages SET verification = ?3
             WHERE sender = ?1 AND sender_key = ?2
               AND json_extract(verification, '$.state') = 'key_changed'",
            params![user.0, new_key_id, to_json(&Verification::Trusted)?],
        )?;
    }
    tx.commit()?;
    Ok(changed > 0)
}

pub(crate) fn set_verified(
    conn: &Connection,
    user: UserId,
    verified: bool,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE pins SET verified = ?2 WHERE user_id = ?1",
        params![user.0, verified],
    )? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn keys(n: u8) -> PublicKeys {
        PublicKeys {
            sign: B64(vec![n; 4]),
            enc: B64(vec![n + 100; 4]),
        }
    }

    fn message(chat: i64, seq: i64, text: &str) -> Message {
        Message {
            chat_id: ChatId(chat),
            seq: Seq::new(seq),
            sender: UserId(2),
            client_msg_id: format!("m{seq}"),
            sent_at: Timestamp::from_millis(1),
            at: Timestamp::from_millis(2),
            payload: Some(MessagePayload::text(text)),
            verification: Verification::Trusted,
            edited_seq: None,
            deleted: false,
        }
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("a/b/store.sqlite3"), UserId(1)).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn the_file_is_private_and_bound_to_its_account() {
        let (dir, store) = open();
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "file mode {mode:o}");
        let folder = std::fs::metadata(dir.path().join("a/b")).unwrap();
        assert_eq!(folder.permissions().mode() & 0o077, 0);
        drop(store);
        let path = dir.path().join("a/b/store.sqlite3");
        assert!(Store::open(&path, UserId(1)).is_ok());
        let err = Store::open(&path, UserId(2)).unwrap_err();
        assert!(err.to_string().contains("belongs to user 1"), "{err}");
    }

    #[tokio::test]
    async fn positions_only_move_forwards() {
        let (_dir, store) = open();
        store
            .run(|conn| {
                assert_eq!(last_seq(conn, ChatId(5))?, Seq::ZERO);
                advance(conn, ChatId(5), Seq::new(4))?;
                advance(conn, ChatId(5), Seq::new(2))?;
                assert_eq!(last_seq(conn, ChatId(5))?, Seq::new(4));
                set_active(conn, ChatId(5), false)?;
                set_active(conn, ChatId(6), true)?;
                let all = positions(conn)?;
                assert_eq!(
                    all,
                    vec![
                        ChatPosition {
                            chat_id: ChatId(5),
                            last_seq: Seq::new(4),
                            active: false
                        },
                        ChatPosition {
                            chat_id: ChatId(6),
                            last_seq: Seq::new(0),
                            active: true
                        }
                    ]
                );
                Ok(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn messages_edits_and_deletions() {
        let (_dir, store) = open();
        store
            .run(|conn| {
                for seq in 1..=5 {
                    insert_message(conn, &message(1, seq, &format!("text {seq}")), b"k")?;
                }
                // A second insert of the same seq changes nothing.
                insert_message(conn, &message(1, 1, "other"), b"k")?;
                let page = messages(conn, ChatId(1), None, 3)?;
                assert_eq!(
                    page.iter().map(|m| m.seq.get()).collect::<Vec<_>>(),
                    vec![3, 4, 5]
                );
                let page = messages(conn, ChatId(1), Some(Seq::new(3)), 10)?;
                assert_eq!(
                    page.iter().map(|m| m.seq.get()).collect::<Vec<_>>(),
                    vec![1, 2]
                );
                assert_eq!(page[0].text(), Some("text 1"));

                let edit = MessageEdit {
                    chat_id: ChatId(1),
                    seq: Seq::new(6),
                    target_seq: Seq::new(1),
                    sender: UserId(2),
                    at: Timestamp::from_millis(3),
                    payload: Some(MessagePayload::text("better")),
                    verification: Verification::Trusted,
                };
                assert!(apply_edit(conn, &edit, b"k")?);
                let forged = MessageEdit {
                    sender: UserId(3),
                    ..edit.clone()
                };
                assert!(!apply_edit(conn, &forged, b"k")?);
                let flagged = MessageEdit {
                    seq: Seq::new(7),
                    payload: Some(MessagePayload::text("evil")),
                    verification: Verification::Invalid { reason: "x".into() },
                    ..edit
                };
                assert!(apply_edit(conn, &flagged, b"k")?);
                let edited = super::message(conn, ChatId(1), Seq::new(1))?.unwrap();
                assert_eq!(edited.text(), Some("better"));
                assert_eq!(edited.edited_seq, Some(Seq::new(7)));

                let deletion = MessageDeletion {
                    chat_id: ChatId(1),
                    seq: Seq::new(8),
                    target_seq: Seq::new(2),
                    sender: UserId(2),
                    at: Timestamp::from_millis(4),
                };
                assert!(apply_delete(conn, &deletion)?);
                let gone = super::message(conn, ChatId(1), Seq::new(2))?.unwrap();
                assert!(gone.deleted && gone.payload.is_none());
                assert!(!apply_delete(
                    conn,
                    &MessageDeletion {
                        sender: UserId(9),
                        target_seq: Seq::new(3),
                        ..deletion
                    }
                )?);

                assert_eq!(envelope_seq(conn, ChatId(1), UserId(2), "m1")?, None);
                record_envelope_id(conn, ChatId(1), UserId(2), "m1", Seq::new(1))?;
                record_envelope_id(conn, ChatId(1), UserId(2), "m1", Seq::new(9))?;
                assert_eq!(
                    envelope_seq(conn, ChatId(1), UserId(2), "m1")?,
                    Some(Seq::new(1))
                );
                Ok(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn pins_change_only_when_accepted() {
        let (_dir, store) = open();
        store
            .run(|conn| {
                let user = UserId(9);
                assert!(pin(conn, user)?.is_none());
                let first = pin_first_seen(conn, user, &keys(1))?;
                assert_eq!(first.keys, keys(1));
                // First sight wins: another key later does not replace it.
                assert_eq!(pin_first_seen(conn, user, &keys(2))?.keys, keys(1));
                assert!(set_verified(conn, user, true)?);
                assert!(set_pending(conn, user, &keys(2))?);
                assert!(!set_pending(conn, user, &keys(2))?, "reported once");
                let pinned = pin(conn, user)?.unwrap();
                assert_eq!(pinned.keys, keys(1));
                assert_eq!(pinned.pending, Some(keys(2)));

                let mut flagged = message(1, 1, "from the new key");
                flagged.sender = user;
                flagged.verification = Verification::KeyChanged {
                    fingerprint: "F".into(),
                };
                insert_message(conn, &flagged, b"new-key")?;
                let mut other = message(1, 2, "from yet another key");
                other.sender = user;
                other.verification = flagged.verification.clone();
                insert_message(conn, &other, b"other-key")?;

                assert!(accept_pending(conn, user, b"new-key")?);
                let now = pin(conn, user)?.unwrap();
                assert_eq!(now.keys, keys(2));
                assert!(!now.verified && now.pending.is_none());
                assert_eq!(
                    super::message(conn, ChatId(1), Seq::new(1))?
                        .unwrap()
                        .verification,
                    Verification::Trusted
                );
                assert!(matches!(
                    super::message(conn, ChatId(1), Seq::new(2))?
                        .unwrap()
                        .verification,
                    Verification::KeyChanged { .. }
                ));
                assert!(!accept_pending(conn, user, b"new-key")?);
                Ok(())
            })
            .await
            .unwrap();
    }

    #[test]
    fn store_paths_are_per_server_and_account() {
        let path = Store::path_for(
            Path::new("/data"),
            &ServerAddr::new("::1", 8080),
            UserId(42),
        );
        assert_eq!(path, Path::new("/data/__1_8080/user-42.sqlite3"));
    }
}
