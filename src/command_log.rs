//! The command log: one JSON line per finished command, appended to the
//! configured file by a background thread, plus a human-readable line at info
//! level through `tracing`.
//!
//! Entries hold only what `CommandLogEntry` holds (time, request id, IP, user,
//! session, command, outcome, duration): never a body, key, token or password.
//! Writing never blocks a request: when the writer falls behind by more than
//! [`QUEUE_CAPACITY`] lines, further lines are dropped and counted.
//!
//! Rotation ([`Rotation`]): before a line would take the file past
//! `max_bytes`, it is renamed `commands.log.1` (the one before becomes `.2`,
//! and so on), files past `keep` are deleted, and a new file is started.
//! Lines are never split across files. (Written here rather than with a
//! rotation crate: the writer thread already owns the file and the line
//! boundaries, and file-rotate 0.8 panics when its folder cannot be created.)

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

/// When the command log is rotated and how many old files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// A line that would take the file past this many bytes goes to a new file.
    pub max_bytes: u64,
    /// Rotated files kept (`.1` the newest); 0 keeps none.
    pub keep: usize,
}

impl Default for Rotation {
    /// The defaults of config.yaml: 64 MiB, 7 files.
    fn default() -> Self {
        Rotation {
            max_bytes: 64 * 1024 * 1024,
            keep: 7,
        }
    }
}

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
    /// through `tracing` only when `path` is `None`; rotated by the defaults.
    pub fn open(path: Option<&Path>) -> std::io::Result<CommandLog> {
        Self::open_rotating(path, Rotation::default())
    }

    /// [`CommandLog::open`] with the given rotation.
    pub fn open_rotating(path: Option<&Path>, rotation: Rotation) -> std::io::Result<CommandLog> {
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
        let file = RotatingFile::open(path.to_owned(), rotation)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("command-log".to_owned())
            .spawn(move || write_lines(&rx, file))?;
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

/// The open log file, its size, and where it rotates.
struct RotatingFile {
    path: PathBuf,
    rotation: Rotation,
    out: BufWriter<std::fs::File>,
    size: u64,
}

impl RotatingFile {
    fn open(path: PathBuf, rotation: Rotation) -> std::io::Result<RotatingFile> {
        let file = Self::open_file(&path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path,
            rotation,
            out: BufWriter::new(file),
            size,
        })
    }

    fn open_file(path: &Path) -> std::io::Result<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
    }

    /// `commands.log.N`
    fn numbered(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        let len = line.len() as u64 + 1;
        if self.size > 0 && self.size + len > self.rotation.max_bytes {
            self.rotate()?;
        }
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.size += len;
        Ok(())
    }

    /// Moves `.N` to `.N+1` (the oldest past `keep` is overwritten or
    /// deleted), the current file to `.1`, and starts an empty one.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        let keep = self.rotation.keep;
        // Files past `keep`, e.g. after `keep` was lowered.
        let mut n = keep + 1;
        while std::fs::remove_file(self.numbered(n)).is_ok() {
            n += 1;
        }
        if keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            for n in (1..keep).rev() {
                match std::fs::rename(self.numbered(n), self.numbered(n + 1)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, self.numbered(1))?;
        }
        self.out = BufWriter::new(Self::open_file(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

/// The writer thread: appends lines, flushing whenever the queue runs dry so
/// a line reaches the file within moments of its command.
fn write_lines(rx: &Receiver<Op>, mut out: RotatingFile) {
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
                report(out.out.flush(), &mut failing);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut next = Some(op);
        while let Some(op) = next.take() {
            match op {
                Op::Line(line) => {
                    report(out.write_line(&line), &mut failing);
                }
                Op::Flush(done) => {
                    report(
                        out.out.flush().and_then(|()| out.out.get_ref().sync_data()),
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
    report(out.out.flush(), &mut failing);
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
    fn rotates_by_size_and_keeps_only_the_newest_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("commands.log");
        let line_len = serde_json::to_string(&entry(100)).unwrap().len() as u64 + 1;
        // Three lines per file; a left-over file past `keep` goes too.
        std::fs::write(dir.path().join("commands.log.3"), "old\n").unwrap();
        let rotation = Rotation {
            max_bytes: line_len * 3,
            keep: 2,
        };
        let log = CommandLog::open_rotating(Some(&path), rotation).unwrap();
        for n in 100..111 {
            log.write(&entry(n));
        }
        assert!(log.flush(Duration::from_secs(5)));
        let ids = |name: &str| -> Vec<String> {
            std::fs::read_to_string(dir.path().join(name))
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str::<CommandLogEntry>(l)
                        .unwrap()
                        .request_id
                })
                .collect()
        };
        // 11 lines: 100-102, 103-105 (deleted), 106-108 (.1 -> .2), 109-110
        assert_eq!(ids("commands.log"), ["req109", "req110"]);
        assert_eq!(ids("commands.log.1"), ["req106", "req107", "req108"]);
        assert_eq!(ids("commands.log.2"), ["req103", "req104", "req105"]);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["commands.log", "commands.log.1", "commands.log.2"]);
        for name in &names {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        drop(log);
    }

    #[test]
    fn reopening_counts_the_existing_size_and_keep_0_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("commands.log");
        std::fs::write(&path, "x".repeat(5000) + "\n").unwrap();
        let rotation = Rotation {
            max_bytes: 5001,
            keep: 0,
        };
        let log = CommandLog::open_rotating(Some(&path), rotation).unwrap();
        log.write(&entry(1));
        assert!(log.flush(Duration::from_secs(5)));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("req1"), "{text}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn disabled_file_still_accepts_entries() {
        let log = CommandLog::open(None).unwrap();
        log.write(&entry(1));
        assert!(log.flush(Duration::from_millis(10)));
        assert!(log.path().is_none());
    }
}
