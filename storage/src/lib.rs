//! Ferrogram storage: an r2d2 pool of rusqlite connections, numbered SQL
//! migrations and small repository functions.
//!
//! Repository functions are plain sync functions over `&rusqlite::Connection`.
//! Async code reaches them only through [`Storage::run`], which runs a closure
//! on tokio's blocking pool, so a slow disk never stalls an executor thread.

pub mod backend;
pub mod chats;
pub mod events;
pub mod invitations;
pub mod migrations;
pub mod presence;
pub mod rules;
pub mod sessions;
pub mod users;
pub mod verifications;
pub mod writer;

pub use backend::EventStore;
pub use rules::ChatRules;
pub use writer::{EventWriter, WriterConfig};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Re-exported so callers can name connection types without their own
/// (possibly mismatched) rusqlite dependency.
pub use rusqlite;

/// The length of `value`'s JSON text (`serde_json::to_vec(value)?.len()`)
/// without building it: what a reply or frame carrying it will take. A value
/// that does not serialize counts as 0 (it is not sent either).
pub fn json_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => 0,
    }
}

/// How long a connection waits for another writer before giving up with
/// `SQLITE_BUSY`. Writes are short, so anything near this is a real problem.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `Storage::run` waits for a free pooled connection.
const POOL_TIMEOUT: Duration = Duration::from_secs(10);

/// A column with a UNIQUE constraint that an insert or update collided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueField {
    Email,
    Handle,
}

impl std::fmt::Display for UniqueField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UniqueField::Email => "email",
            UniqueField::Handle => "handle",
        })
    }
}

/// Everything that can go wrong in storage. Messages never contain bound
/// values (SQLite errors carry the statement, not its parameters).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create database folder {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database schema version {found} is newer than this server knows ({known}); run a newer ferrogram-server or restore a matching backup")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("{0} is already taken")]
    Conflict(UniqueField),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value does not fit its Rust type (a bug or a hand-edited database).
    #[error("corrupt value in column {column}")]
    Corrupt { column: &'static str },
    #[error("blocking database task failed: {0}")]
    Task(String),
}

/// Handle to the database; cheap to clone (the pool is reference-counted).
#[derive(Clone)]
pub struct Storage {
    pool: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Per-connection settings. Only `journal_mode` is stored in the file; the
/// others reset with every connection, so every pooled connection sets them.
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // WAL lets readers proceed while one writer commits.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL, not NORMAL: in WAL mode NORMAL survives a process crash (kill -9)
    // but may lose the last commits on power loss or an OS crash. The server
    // acknowledges a message only after its commit, and an acknowledgement must
    // mean "stored", so each commit waits for fsync. The cost (one fsync per
    // transaction) is paid once per batch by the message writer's group commit.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

impl Storage {
    /// Opens (creating if needed) the database at `path`, applies pending
    /// migrations and builds a pool of `pool_size` connections.
    pub fn open(path: impl AsRef<Path>, pool_size: u32) -> Result<Storage, StorageError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StorageError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }

        // Migrate on a connection of its own before the pool opens any, so no
        // pooled connection ever sees a half-migrated schema.
        {
            let mut conn = Connection::open(&path)?;
            configure(&conn)?;
            migrations::apply(&mut conn)?;
        }

        let manager = SqliteConnectionManager::file(&path).with_init(|conn| configure(conn));
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .connection_timeout(POOL_TIMEOUT)
            .build(manager)?;
        Ok(Storage { pool, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with a pooled connection on tokio's blocking pool. The closure
    /// gets `&mut Connection` so it can open a transaction
    /// (`conn.transaction()`); repository functions take `&Connection`, which a
    /// transaction derefs to.
    pub async fn run<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(StorageError::from)?;
            f(&mut conn)
        })
        .await
        .map_err(|e| E::from(StorageError::Task(e.to_string())))?
    }

    /// Synchronous access for start-up code and tests that are not on a tokio
    /// runtime. Never call this from async code.
    pub fn with_conn<T, E>(&self, f: impl FnOnce(&mut Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StorageError>,
    {
        let mut conn = self.pool.get().map_err(StorageError::from)?;
        f(&mut conn)
    }
}

/// Turns a UNIQUE violation on `users.email` / `users.handle` into
/// [`StorageError::Conflict`]; everything else passes through.
pub(crate) fn map_unique(err: rusqlite::Error) -> StorageError {
    if let rusqlite::Error::SqliteFailure(code, Some(msg)) = &err {
        if code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE {
            // SQLite names the column as "UNIQUE constraint failed: users.email".
            if msg.contains("users.email") {
                return StorageError::Conflict(UniqueField::Email);
            }
            if msg.contains("users.handle") {
                return StorageError::Conflict(UniqueField::Handle);
            }
        }
    }
    StorageError::Sqlite(err)
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Storage;

    /// A fresh database file in its own temporary folder (deleted on drop).
    pub fn temp_storage() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(dir.path().join("db").join("ferrogram.sqlite3"), 4)
            .expect("open storage");
        (dir, storage)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::temp_storage;
    use super::*;

    #[test]
    fn every_connection_has_the_pragmas() {
        let (_dir, storage) = temp_storage();
        // hold several connections at once so more than one is checked
        let conns: Vec<_> = (0..3).map(|_| storage.pool.get().unwrap()).collect();
        for conn in &conns {
            let fk: i64 = conn
                .pragma_query_value(None, "foreign_keys", |r| r.get(0))
                .unwrap();
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            let sync: i64 = conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap();
            let busy: i64 = conn
                .pragma_query_value(None, "busy_timeout", |r| r.get(0))
                .unwrap();
            assert_eq!(fk, 1);
            assert_eq!(mode, "wal");
            assert_eq!(sync, 2, "synchronous=FULL");
            assert_eq!(busy, 5000);
        }
    }

    #[test]
    fn open_creates_parent_folders() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("b").join("db.sqlite3");
        let storage = Storage::open(&path, 1).unwrap();
        assert!(path.exists());
        assert_eq!(storage.path(), path);
    }

    #[tokio::test]
    async fn run_executes_on_the_blocking_pool() {
        let (_dir, storage) = temp_storage();
        let n: i64 = storage
            .run(|conn| Ok::<_, StorageError>(conn.query_row("SELECT 40 + 2", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, 42);
        // a closure's own error type comes back unchanged
        let err = storage
            .run(|_| Err::<(), _>(StorageError::Conflict(UniqueField::Handle)))
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Conflict(UniqueField::Handle)));
    }
}
