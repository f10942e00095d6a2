//! The drivers of `run`, `sweep` and `connections`: open the fleet of
//! connections, set up the chats, run measured phases, and watch the server.

use super::conn::{Conn, Phase, SendOrder, Shared, SocketOptions};
use super::creds::Credentials;
use super::procfs::{self, RssWatch};
use super::schedule::{FastRng, Schedule};
use super::stats::{cpu_shares, GeneratorUsage, LatencySummary, Report, ServerUsage};
use super::workload::{self, ChatPlan, Kind, Workload};
use ferrogram_client::ServerAddr;
use ferrogram_core::commands::{CreateDirectChat, CreateGroup, UpdateMe};
use ferrogram_core::ids::UserId;
use ferrogram_core::proto::{
    CreateDirectRequest, CreateGroupRequest, GroupAddPolicy, UpdateProfileRequest,
};
use futures_util::{stream, StreamExt};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections opened at once.
const OPEN_CONCURRENCY: usize = 128;
/// Loopback source addresses the connections are spread over (127.0.0.1-16):
/// each has its own ~28,000 ephemeral ports.
const LOOPBACK_SOURCES: u8 = 16;

/// How to open the fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub addr: ServerAddr,
    pub users: usize,
    pub read_buffer: usize,
}

/// One connection per user.
pub struct Fleet {
    pub conns: Vec<Conn>,
    pub shared: Arc<Shared>,
    pub open_errors: u64,
    pub first_error: Option<String>,
    pub open_time: Duration,
}

fn source_for(addr: &ServerAddr, index: usize) -> Option<IpAddr> {
    let ip: IpAddr = addr.host.parse().ok()?;
    if !ip.is_loopback() || !ip.is_ipv4() {
        return None;
    }
    let last = (index % usize::from(LOOPBACK_SOURCES)) as u8 + 1;
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
}

/// Opens one authenticated connection per user (the first `options.users`
/// of the file), `OPEN_CONCURRENCY` at a time.
pub async fn open_fleet(creds: &Credentials, options: &FleetOptions) -> Fleet {
    let shared = Shared::new();
    let started = Instant::now();
    let users = options.users.min(creds.users.len());
    let results: Vec<(usize, Result<Conn, String>)> = stream::iter(0..users)
        .map(|i| {
            let shared = shared.clone();
            let user = &creds.users[i];
            let socket = SocketOptions {
                read_buffer: options.read_buffer,
                ..SocketOptions::from(source_for(&options.addr, i))
            };
            async move {
                let conn = Conn::open(
                    &options.addr,
                    &user.token,
                    i,
                    user.user_id.0,
                    socket,
                    shared,
                )
                .await;
                (i, conn)
            }
        })
        .buffer_unordered(OPEN_CONCURRENCY)
        .collect()
        .await;
    let mut conns: Vec<Option<Conn>> = (0..users).map(|_| None).collect();
    let mut open_errors = 0;
    let mut first_error = None;
    for (i, result) in results {
        match result {
            Ok(conn) => conns[i] = Some(conn),
            Err(e) => {
                open_errors += 1;
                first_error.get_or_insert(format!("user {}: {e}", creds.users[i].handle));
            }
        }
    }
    Fleet {
        conns: conns.into_iter().flatten().collect(),
        shared,
        open_errors,
        first_error,
        open_time: started.elapsed(),
    }
}

impl Fleet {
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        for conn in &self.conns {
            conn.close();
        }
    }
}

/// Creates the workload's chats (through the members' own connections) and
/// prepares the frame templates. Not measured.
pub async fn setup_workload(
    fleet: &Fleet,
    creds: &Credentials,
    kind: Kind,
    message_bytes: usize,
) -> Result<Arc<Workload>, String> {
    if fleet.open_errors > 0 {
        return Err(format!(
            "{} connections failed to open (first: {})",
            fleet.open_errors,
            fleet.first_error.as_deref().unwrap_or("?")
        ));
    }
    let n = fleet.conns.len();
    let user_ids: Vec<i64> = (0..n).map(|i| creds.users[i].user_id.0).collect();
    let identity_of: Vec<usize> = (0..n).map(|i| creds.users[i].identity).collect();
    let identities = creds.decode_identities()?;
    let sealed =
        tokio::task::spawn_blocking(move || workload::seal_once(&identities, message_bytes))
            .await
            .map_err(|e| e.to_string())??;

    // (is a group, members)
    let mut wanted: Vec<(bool, Vec<usize>)> = Vec::new();
    if kind.peers() > 0 {
        wanted.extend(
            workload::direct_pairs(n, kind.peers())
                .into_iter()
                .map(|(a, b)| (false, vec![a, b])),
        );
    }
    if matches!(kind, Kind::Group { .. } | Kind::Mixed { .. }) {
        wanted.extend(
            workload::groups(n, kind.group_size())
                .into_iter()
                .map(|g| (true, g)),
        );
    }
    let conns = &fleet.conns;
    if wanted.iter().any(|(group, _)| *group) {
        // The simulated users never chatted before: by the default privacy
        // setting each add would only be an invitation.
        let open = UpdateProfileRequest {
            who_can_add_me: Some(GroupAddPolicy::Everyone),
            ..UpdateProfileRequest::default()
        };
        let opened: Vec<_> = stream::iter(conns.iter())
            .map(|conn| conn.call::<UpdateMe>(&open))
            .buffer_unordered(64)
            .collect()
            .await;
        for result in opened {
            result?;
        }
    }
    let created: Vec<Created> = stream::iter(wanted.into_iter().enumerate())
        .map(|(i, (group, members))| {
            let user_ids = &user_ids;
            async move {
                let creator = &conns[members[0]];
                let chat = if group {
                    let request = CreateGroupRequest {
                        title: format!("loadgen {i}"),
                        member_ids: members[1..].iter().map(|&m| UserId(user_ids[m])).collect(),
                    };
                    creator.call::<CreateGroup>(&request).await?
                } else {
                    let request = CreateDirectRequest {
                        user_id: UserId(user_ids[members[1]]),
                    };
                    creator.call::<CreateDirectChat>(&request).await?
                };
                Ok((group, members, chat.id.0))
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut chats = Vec::new();
    for result in created {
        let (group, members, chat_id) = result?;
        let pairs: Vec<(i64, usize)> = members
            .iter()
            .map(|&m| (user_ids[m], identity_of[m]))
            .collect();
        chats.push(ChatPlan {
            chat_id,
            group,
            members,
            template: workload::chat_template(chat_id, &pairs, &sealed)?,
        });
    }
    chats.sort_by_key(|c| c.chat_id);
    let workload = Arc::new(Workload::new(
        kind,
        chats,
        user_ids,
        identity_of,
        sealed.sender_keys.clone(),
    ));
    *fleet
        .shared
        .workload
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(workload.clone());
    Ok(workload)
}

/// A created chat: (is a group, members, chat id).
type Created = Result<(bool, Vec<usize>, i64), String>;

/// How one measured phase runs.
#[derive(Debug, Clone)]
pub struct PhaseOptions {
    pub rate: f64,
    pub duration: Duration,
    /// Longest wait for outstanding acks and receipts after the schedule ends.
    pub drain: Duration,
    pub server_pid: Option<u32>,
    pub message_bytes: usize,
    pub seed: u64,
    pub progress: bool,
}

/// Sends the schedule, waits for what is outstanding, and reports.
pub async fn run_phase(
    fleet: &Fleet,
    workload: &Workload,
    number: u64,
    options: &PhaseOptions,
) -> Report {
    let schedule = Schedule::new(options.rate, options.duration);
    let total = schedule.total();
    let before = options.server_pid.and_then(procfs::sample);
    let own_before = procfs::sample(std::process::id());
    let watch = options
        .server_pid
        .map(|pid| RssWatch::start(pid, Duration::from_millis(100)));
    let phase = Arc::new(Phase::new(number, options.rate, total));
    fleet.shared.phase.set(Some(phase.clone()));
    let start = phase.start;
    let mut rng = FastRng::new(options.seed ^ number.wrapping_mul(0x9E37_79B9));
    let mut issued = 0u64;
    let mut lag_max = Duration::ZERO;
    let mut progress = Progress::new(options.progress);
    while issued < total {
        let elapsed = start.elapsed();
        let due = schedule.due_by(elapsed);
        if issued < due {
            lag_max = lag_max.max(elapsed.saturating_sub(schedule.due(issued)));
        }
        while issued < due {
            let Some((user, chat)) = workload.pick(&mut rng) else {
                break;
            };
            let due_us = schedule.due(issued).as_micros() as u64;
            fleet.conns[user].send(SendOrder {
                chat,
                phase: number,
                index: issued,
                due_us,
            });
            issued += 1;
        }
        progress.tick(&phase, fleet, elapsed);
        if issued < total {
            let next = start + schedule.due(issued);
            tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
        }
    }
    // Drain: until everything is answered and received, or nothing moved for
    // a while, or the drain time is up.
    let drain_end = Instant::now() + options.drain;
    let mut last_moved = Instant::now();
    let mut last_count = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        progress.tick(&phase, fleet, start.elapsed());
        let t = &phase.tracker;
        let sent = t.sent.load(Ordering::Relaxed);
        let count = t.acknowledged.load(Ordering::Relaxed)
            + t.deliveries.load(Ordering::Relaxed)
            + error_count(&phase);
        if count != last_count {
            last_count = count;
            last_moved = Instant::now();
        }
        if sent >= total {
            let tally = t.tally();
            if tally.unacknowledged == 0 && tally.lost_deliveries == 0 {
                break;
            }
        }
        if Instant::now() >= drain_end || last_moved.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    progress.done(&phase, fleet, start.elapsed());
    fleet.shared.phase.set(None);
    let wall = start.elapsed();
    let after = options.server_pid.and_then(procfs::sample);
    let own_after = procfs::sample(std::process::id());
    let peak = match watch {
        Some(w) => w.finish().await.rss_kib,
        None => 0,
    };

    let t = &phase.tracker;
    let tally = t.tally();
    let (e2e, ack) = phase.histograms();
    let mut errors = std::collections::BTreeMap::new();
    for (code, n) in phase
        .errors
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        errors.insert(code.clone(), *n);
    }
    let mut report = Report {
        workload: workload.kind.name(),
        users: workload.user_ids.len(),
        connections: fleet.conns.len(),
        group_size: workload.kind.group_size(),
        message_bytes: options.message_bytes,
        target_rate: options.rate,
        sent: t.sent.load(Ordering::Relaxed),
        acknowledged: t.acknowledged.load(Ordering::Relaxed),
        unacknowledged: tally.unacknowledged,
        errors,
        expected_deliveries: tally.expected_deliveries,
        delivered: t.deliveries.load(Ordering::Relaxed),
        lost: tally.lost_deliveries,
        first_lost_index: tally.first_incomplete,
        duplicated: t.duplicates.load(Ordering::Relaxed),
        echoes: t.echoes.load(Ordering::Relaxed),
        strays: t.strays.load(Ordering::Relaxed),
        e2e_latency: LatencySummary::of(&e2e),
        ack_latency: LatencySummary::of(&ack),
        // A connection lost before the phase (in the warm-up, say) is
        // missing from it too: its user's sends and receipts are.
        connection_errors: fleet.shared.dropped.load(Ordering::Relaxed),
        generator_lag_ms_max: lag_max.as_secs_f64() * 1000.0,
        server: None,
        ..Report::default()
    };
    report.set_span(
        options.duration,
        Duration::from_micros(t.last_activity_us.load(Ordering::Relaxed)),
    );
    let cpu_between = |before: procfs::ProcSample, after: procfs::ProcSample| {
        let seconds = procfs::ticks_to_secs(after.cpu_ticks.saturating_sub(before.cpu_ticks));
        cpu_shares(seconds, wall, report.sent)
    };
    if let (Some(pid), Some(before), Some(after)) = (options.server_pid, before, after) {
        let (cpu_seconds, cpu_cores_busy, cpu_us_per_message) = cpu_between(before, after);
        report.server = Some(ServerUsage {
            pid,
            peak_rss_kib: peak.max(after.rss_kib),
            rss_before_kib: before.rss_kib,
            rss_after_kib: after.rss_kib,
            cpu_seconds,
            cpu_cores_busy,
            cpu_us_per_message,
        });
    }
    if let (Some(before), Some(after)) = (own_before, own_after) {
        let (cpu_seconds, cpu_cores_busy, cpu_us_per_message) = cpu_between(before, after);
        report.generator = Some(GeneratorUsage {
            cpu_seconds,
            cpu_cores_busy,
            cpu_us_per_message,
        });
    }
    report
}

fn error_count(phase: &Phase) -> u64 {
    phase
        .errors
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .values()
        .sum()
}

/// The progress line on stderr: rewritten in place on a terminal, a line
/// per second otherwise.
struct Progress {
    enabled: bool,
    tty: bool,
    next: Duration,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            tty: std::io::stderr().is_terminal(),
            next: Duration::from_secs(1),
        }
    }

    fn line(phase: &Phase, fleet: &Fleet, elapsed: Duration) -> String {
        let t = &phase.tracker;
        let secs = elapsed.as_secs_f64().max(1e-9);
        let acked = t.acknowledged.load(Ordering::Relaxed);
        let delivered = t.deliveries.load(Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss)]
        let (acked_rate, delivered_rate) = (acked as f64 / secs, delivered as f64 / secs);
        format!(
            "[{secs:6.1} s] sent {:>9}  acked {acked:>9} ({acked_rate:>7.0}/s)  delivered {delivered:>10} ({delivered_rate:>8.0}/s)  errors {}  dropped {}",
            t.sent.load(Ordering::Relaxed),
            error_count(phase),
            fleet.shared.dropped.load(Ordering::Relaxed),
        )
    }

    fn tick(&mut self, phase: &Phase, fleet: &Fleet, elapsed: Duration) {
        if !self.enabled || elapsed < self.next {
            return;
        }
        self.next = elapsed + Duration::from_secs(1);
        let line = Self::line(phase, fleet, elapsed);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    fn done(&mut self, phase: &Phase, fleet: &Fleet, elapsed: Duration) {
        if self.enabled {
            let line = Self::line(phase, fleet, elapsed);
            let prefix = if self.tty { "\r" } else { "" };
            eprintln!("{prefix}{line}");
        }
    }
}

/// One step of a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepStep {
    pub rate: f64,
    pub passed: bool,
    pub why: String,
    pub report: Report,
}

/// Whether a phase kept up: nothing lost or refused, p99 within the bound,
/// and the acknowledged rate within 3 % of the target.
pub fn judge(report: &Report, p99_bound_ms: f64) -> (bool, String) {
    if !report.clean() {
        return (
            false,
            format!(
                "lost {} unacknowledged {} duplicated {} errors {} connection errors {}",
                report.lost,
                report.unacknowledged,
                report.duplicated,
                report.errors.values().sum::<u64>(),
                report.connection_errors
            ),
        );
    }
    if report.e2e_latency.p99_ms > p99_bound_ms {
        return (
            false,
            format!(
                "p99 {:.1} ms over {p99_bound_ms} ms",
                report.e2e_latency.p99_ms
            ),
        );
    }
    if report.acked_per_sec < report.target_rate * 0.97 {
        return (
            false,
            format!(
                "acknowledged {:.0}/s of {:.0}/s",
                report.acked_per_sec, report.target_rate
            ),
        );
    }
    (
        true,
        format!("p99 {:.1} ms, nothing lost", report.e2e_latency.p99_ms),
    )
}

/// What `connections` measures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectionsReport {
    pub requested: usize,
    pub opened: usize,
    pub open_errors: u64,
    pub first_error: Option<String>,
    pub open_seconds: f64,
    pub server_pid: Option<u32>,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub rss_after_close_kib: u64,
    /// (RSS with the connections open - RSS before) / connections.
    pub kib_per_connection: f64,
    /// Dropped while they should have been idle.
    pub dropped: u64,
}

impl ConnectionsReport {
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        #[allow(clippy::cast_precision_loss)]
        let mib = |kib: u64| kib as f64 / 1024.0;
        let mut out = format!(
            "  connections            {} of {} opened in {:.1} s ({} errors{})\n",
            self.opened,
            self.requested,
            self.open_seconds,
            self.open_errors,
            self.first_error
                .as_deref()
                .map(|e| format!("; first: {e}"))
                .unwrap_or_default()
        );
        if let Some(pid) = self.server_pid {
            let _ = write!(
                out,
                "  server pid {pid}: RSS {:.1} MiB before, {:.1} MiB with them open, {:.1} MiB after closing\n  per connection         {:.1} KiB\n",
                mib(self.rss_before_kib),
                mib(self.rss_after_kib),
                mib(self.rss_after_close_kib),
                self.kib_per_connection
            );
        }
        let _ = writeln!(out, "  dropped while idle     {}", self.dropped);
        out
    }
}

/// Opens `users` idle connections and measures the server's memory per connection.
pub async fn connections(
    creds: &Credentials,
    options: &FleetOptions,
    server_pid: Option<u32>,
    settle: Duration,
    hold: Duration,
) -> ConnectionsReport {
    let before = server_pid.and_then(procfs::sample);
    let fleet = open_fleet(creds, options).await;
    tokio::time::sleep(settle).await;
    let after = server_pid.and_then(procfs::sample);
    tokio::time::sleep(hold).await;
    let dropped = fleet.shared.dropped.load(Ordering::Relaxed);
    fleet.close();
    let opened = fleet.conns.len();
    let mut report = ConnectionsReport {
        requested: options.users,
        opened,
        open_errors: fleet.open_errors,
        first_error: fleet.first_error.clone(),
        open_seconds: fleet.open_time.as_secs_f64(),
        server_pid,
        dropped,
        ..ConnectionsReport::default()
    };
    drop(fleet);
    tokio::time::sleep(settle).await;
    if let (Some(before), Some(after)) = (before, after) {
        report.rss_before_kib = before.rss_kib;
        report.rss_after_kib = after.rss_kib;
        #[allow(clippy::cast_precision_loss)]
        {
            report.kib_per_connection =
                after.rss_kib.saturating_sub(before.rss_kib) as f64 / opened.max(1) as f64;
        }
    }
    if let Some(closed) = server_pid.and_then(procfs::sample) {
        report.rss_after_close_kib = closed.rss_kib;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(p99_ms: f64, acked_per_sec: f64) -> Report {
        Report {
            target_rate: 1000.0,
            acked_per_sec,
            e2e_latency: crate::stats::LatencySummary {
                p99_ms,
                ..Default::default()
            },
            ..Report::default()
        }
    }

    #[test]
    fn a_step_passes_only_clean_within_the_bound_and_keeping_up() {
        assert!(judge(&report(40.0, 1000.0), 50.0).0);
        let (passed, why) = judge(&report(60.0, 1000.0), 50.0);
        assert!(!passed && why.contains("p99"), "{why}");
        let (passed, why) = judge(&report(10.0, 900.0), 50.0);
        assert!(!passed && why.contains("acknowledged"), "{why}");
        let mut lost = report(10.0, 1000.0);
        lost.lost = 1;
        let (passed, why) = judge(&lost, 50.0);
        assert!(!passed && why.contains("lost 1"), "{why}");
    }

    #[test]
    fn loopback_connections_spread_over_source_addresses() {
        let local = ServerAddr::new("127.0.0.1", 8080);
        assert_eq!(source_for(&local, 0), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(
            source_for(&local, 17),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        );
        assert_eq!(source_for(&ServerAddr::new("192.0.2.7", 8080), 3), None);
        assert_eq!(source_for(&ServerAddr::new("example.org", 8080), 3), None);
    }
}
