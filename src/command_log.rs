//! The command log: one JSON line per finished command, appended to the
//! configured file by a background thread, plus a human-readable line at info
//! level through `tracing`.
//!
//! Entries hold only what `CommandLogEntry` holds (time, request id, IP, user,
//! session, command, outcome, duration): never a body, key, token or password.
//! Writing never blocks a request: when the writer falls behind by more than
//! [`QUEUE_CAPACITY`] lines, further lines are dropped and counted.

use ferrogram_core::command::CommandLogEntry;
use ferrogram_handlers::CommandLogSink;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Lines that may wait for the writer before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 16_384;

/// How long the writer thread lets lines gather after writing a batch: at
/// most 16,384 lines fit, so up to 1.6 million commands a second.
const GATHER: Duration = Duration::from_millis(10);

enum Op {
    Line(String),
    Flush(mpsc::Sender<()>),
}

/// The command-log sink handed to the handlers. Cheap to share.
pub struct CommandLog {
    file: Option<FileWriter>,
    dropped: Arc<AtomicU64>,
}

struct FileWriter {
    path: PathBuf,
    tx: SyncSender<Op>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl CommandLog {
    /// Opens (creating, mode 0600) the file at `path` for appending, or logs
    /// through `tracing` only when `path` is `None`.
    pub fn open(path: Option<&Path>) -> std::io::Result<CommandLog> {
        let dropped = Arc::new(AtomicU64::new(0));
        let Some(path) = path else {
            return Ok(CommandLog {
                file: None,
                dropped,
            });
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)?
        };
        let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("command-log".to_owned())
            .spawn(move || write_lines(&rx, BufWriter::new(file)))?;
        Ok(CommandLog {
            file: Some(FileWriter {
                path: path.to_owned(),
                tx,
                thread: Mutex::new(Some(thread)),
            }),
            dropped,
        })
    }

    /// The file written to, if any.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` until every line queued so far is on disk.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(file) = &self.file else {
            return true;
        };
        let (done_tx, done_rx) = mpsc::channel();
        if file.tx.send(Op::Flush(done_tx)).is_err() {
            return false;
        }
        done_rx.recv_timeout(timeout).is_ok()
    }

    fn human_line(entry: &CommandLogEntry) {
        let user = entry
            .user_id
            .map_or_else(|| "-".to_owned(), |u| u.to_string());
        tracing::info!(
            target: "ferrogram::command",
            request_id = %entry.request_id,
            ip = %entry.ip,
            user = %user,
            duration_us = entry.duration_us,
            "{} -> {}",
            entry.command,
            entry.outcome
        );
    }
}

impl CommandLogSink for CommandLog {
    fn write(&self, entry: &CommandLogEntry) {
        Self::human_line(entry);
        let Some(file) = &self.file else { return };
        let line = match serde_json::to_string(entry) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "command log entry not serializable");
                return;
            }
        };
        match file.tx.try_send(Op::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let before = self.dropped.fetch_add(1, Ordering::Relaxed);
                if before.is_power_of_two() || before == 0 {
                    tracing::warn!(
                        dropped = before + 1,
                        "command log writer behind, lines dropped"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for CommandLog {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            let FileWriter { tx, thread, .. } = file;
            drop(tx);
            let thread = thread
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(thread) = thread {
                let _ = thread.join();
            }
        }
    }
}

/// The writer thread: appends lines, flushing whenever the queue runs dry so
/// a line reaches the file within moments of its command.
fn write_lines(rx: &Receiver<Op>, mut out: BufWriter<std::fs::File>) {
    // Report a failing disk once, not once per line.
    fn report(result: std::io::Result<()>, failing: &mut bool) {
        match result {
            Ok(()) => *failing = false,
            Err(e) => {
                if !*failing {
                    tracing::error!(error = %e, "cannot write the command log");
                }
                *failing = true;
            }
        }
    }
    let mut failing = false;
    loop {
        let op = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(op) => op,
            Err(RecvTimeoutError::Timeout) => {
                report(out.flush(), &mut failing);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut next = Some(op);
        while let Some(op) = next.take() {
            match op {
                Op::Line(line) => {
                    report(
                        out.write_all(line.as_bytes())
                            .and_then(|()| out.write_all(b"\n")),
                        &mut failing,
                    );
                }
                Op::Flush(done) => {
                    report(
                        out.flush().and_then(|()| out.get_ref().sync_data()),
                        &mut failing,
                    );
                    let _ = done.send(());
                }
            }
            next = rx.try_recv().ok();
        }
        // Busy: let lines gather instead of waking this thread for each one
        // (a futex wake and two context switches per command at full load).
        // Idle, it blocks in `recv_timeout` above and costs nothing.
        std::thread::sleep(GATHER);
    }
    report(out.flush(), &mut failing);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogram_core::ids::{SessionId, UserId};

    fn entry(n: u64) -> CommandLogEntry {
        CommandLogEntry {
            time: "2026-01-01T00:00:00.000Z".to_owned(),
            request_id: format!("req{n}"),
            ip: "127.0.0.1".to_owned(),
            user_id: Some(UserId(7)),
            session_id: Some(SessionId("ab".repeat(16))),
            command: "me.get".to_owned(),
            outcome: "ok".to_owned(),
            duration_us: n,
        }
    }

    #[test]
    fn appends_one_json_line_per_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/commands.log");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
        let log = CommandLog::open(Some(&path)).unwrap();
        for n in 0..100 {
            log.write(&entry(n));
        }
        assert!(log.flush(Duration::from_secs(5)));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 101);
        let last: CommandLogEntry = serde_json::from_str(lines[100]).unwrap();
        assert_eq!(last.request_id, "req99");
        assert_eq!(last.user_id, Some(UserId(7)));
        assert_eq!(log.dropped(), 0);
        drop(log);
    }

    #[test]
    fn drop_writes_what_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("commands.log");
        let log = CommandLog::open(Some(&path)).unwrap();
        log.write(&entry(1));
        drop(log);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[test]
    fn disabled_file_still_accepts_entries() {
        let log = CommandLog::open(None).unwrap();
        log.write(&entry(1));
        assert!(log.flush(Duration::from_millis(10)));
        assert!(log.path().is_none());
    }
}
