//! The server process seen from /proc (resident memory, CPU time) and this
//! process's file-descriptor limit.

use std::time::Duration;

/// One look at a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    pub rss_kib: u64,
    /// Peak resident set size since the process started (VmHWM).
    pub hwm_kib: u64,
    /// User + system time in clock ticks.
    pub cpu_ticks: u64,
}

/// Reads /proc/<pid>/status and /proc/<pid>/stat; `None` when the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(ProcSample {
        rss_kib: status_kib(&status, "VmRSS:")?,
        hwm_kib: status_kib(&status, "VmHWM:").unwrap_or(0),
        cpu_ticks: stat_cpu_ticks(&stat)?,
    })
}

/// A `Name:   1234 kB` line of /proc/<pid>/status.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// utime + stime (fields 14 and 15) of /proc/<pid>/stat. The command name
/// (field 2) is in parentheses and may contain spaces, so fields are counted
/// after its closing parenthesis.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second of /proc/<pid>/stat times.
pub fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

#[allow(clippy::cast_precision_loss)]
pub fn ticks_to_secs(ticks: u64) -> f64 {
    ticks as f64 / ticks_per_second().max(1) as f64
}

/// Raises this process's open-file limit to at least `wanted` if it can
/// (the soft limit up to the hard one; the hard one too when allowed, e.g.
/// as root). Returns the soft limit in force afterwards.
pub fn raise_nofile(wanted: u64) -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let current = getrlimit(Resource::Nofile);
    let soft = current.current.unwrap_or(u64::MAX);
    if soft >= wanted {
        return soft;
    }
    let hard = current.maximum.unwrap_or(u64::MAX);
    if hard < wanted {
        let both = Rlimit {
            current: Some(wanted),
            maximum: Some(wanted),
        };
        if setrlimit(Resource::Nofile, both).is_ok() {
            return wanted;
        }
    }
    let raised = Rlimit {
        current: Some(hard.min(wanted.max(soft))),
        maximum: current.maximum,
    };
    let _ = setrlimit(Resource::Nofile, raised);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The open-file limit of another process (from /proc/<pid>/limits).
pub fn nofile_of(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Open file descriptors of a process (entries of /proc/<pid>/fd).
pub fn fd_count(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// The highest values a [`RssWatch`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peaks {
    pub rss_kib: u64,
    /// Open descriptors (0 unless the watch counts them).
    pub fds: u64,
}

/// Samples a process's RSS (and, if asked, its open descriptors) every
/// `every` until told to stop; the peaks.
pub struct RssWatch {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Peaks>,
}

impl RssWatch {
    pub fn start(pid: u32, every: Duration) -> Self {
        Self::start_with(pid, every, false)
    }

    /// Like [`RssWatch::start`], counting descriptors too when `fds`.
    pub fn start_with(pid: u32, every: Duration, fds: bool) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut peaks = Peaks::default();
            let look = |peaks: &mut Peaks| {
                if let Some(s) = sample(pid) {
                    peaks.rss_kib = peaks.rss_kib.max(s.rss_kib);
                }
                if fds {
                    peaks.fds = peaks.fds.max(fd_count(pid).unwrap_or(0));
                }
            };
            loop {
                look(&mut peaks);
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = stopped.changed() => break,
                }
            }
            look(&mut peaks);
            peaks
        });
        Self { stop, task }
    }

    pub async fn finish(self) -> Peaks {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_stat_lines() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(1024));
        assert_eq!(status_kib(status, "VmHWM:"), Some(2048));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        let stat = "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        assert_eq!(stat_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = sample(std::process::id()).unwrap();
        assert!(me.rss_kib > 0);
        assert!(me.hwm_kib >= me.rss_kib);
        assert!(ticks_per_second() > 0);
        assert!(nofile_of(std::process::id()).unwrap() > 0);
        // at least stdin, stdout, stderr and the directory being read
        assert!(fd_count(std::process::id()).unwrap() >= 3);
        assert!(fd_count(u32::MAX).is_none());
        assert!(sample(u32::MAX).is_none());
        let limit = raise_nofile(64);
        assert!(limit >= 64);
    }
}
