//! The WAL checkpointer thread beside the writer.

use crate::{Storage, StorageError};
use rusqlite::Connection;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How often the checkpointer copies committed WAL frames into the
/// database file. Often, so that the writer's own completing checkpoint
/// (see [`WAL_RESTART_FRAMES`]) finds little left to copy and sync: at 25 ms
/// instead of 200 ms, p99 at 3k msg/s fell from ~100 ms to 30-52 ms.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(25);

/// WAL frames (pages, 256 MiB) after which the writer finishes a checkpoint
/// itself.
/// The checkpointer's PASSIVE checkpoints never wait for the writer, so
/// under sustained load the writer always appends before one completes and
/// SQLite never starts the WAL over: it would grow without bound (and every
/// read would search an ever larger WAL index). Between two of its own
/// transactions the writer's PASSIVE checkpoint does complete (it only has
/// the frames since the checkpointer's last run to copy), and its next
/// transaction starts the WAL from the beginning. A RESTART checkpoint from
/// the checkpointer would do the same but make the writer sleep in SQLite's
/// busy handler (stalls of 80-130 ms measured).
pub(super) const WAL_RESTART_FRAMES: i64 = 65_536;

/// The thread that checkpoints the WAL for the writer (PASSIVE: it never
/// blocks the writer or readers) and tells it how long the WAL is.
/// Dropping this handle stops it after one last checkpoint.
pub(super) struct Checkpointer {
    _stop: std::sync::mpsc::Sender<()>,
    /// Frames in the WAL at the last checkpoint.
    pub(super) wal_frames: Arc<std::sync::atomic::AtomicI64>,
}

impl Checkpointer {
    pub(super) fn start(storage: &Storage) -> Result<Checkpointer, StorageError> {
        let conn = Connection::open(storage.path())?;
        crate::configure(&conn)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let wal_frames = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let frames_seen = wal_frames.clone();
        std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || loop {
                let last = matches!(
                    stopped.recv_timeout(CHECKPOINT_INTERVAL),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
                );
                match passive_checkpoint(&conn) {
                    Ok(frames) => frames_seen.store(frames, Ordering::Relaxed),
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; will retry"),
                }
                if last {
                    break;
                }
            })
            .map_err(|e| StorageError::Task(format!("cannot start the checkpointer: {e}")))?;
        Ok(Checkpointer {
            _stop: stop,
            wal_frames,
        })
    }
}

/// `PRAGMA wal_checkpoint(PASSIVE)`; the frames in the WAL.
pub(super) fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    // (busy, frames in the WAL, frames checkpointed)
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}
