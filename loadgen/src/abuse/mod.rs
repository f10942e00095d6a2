//! `ferrogram-loadgen abuse`: the attacks of issue 11 ("hold against a
//! hostile client"), each for a bounded time against a server this command
//! starts itself, while legitimate users exchange messages.
//!
//! How a run goes:
//! 1. A temporary folder; the server binary is started in **bench mode**
//!    only to create the test accounts quickly (`provision`: the legitimate
//!    users plus an attacker, a helper account and a victim), then stopped.
//! 2. The same data folder is served by a **normal** server (bench mode off:
//!    full Argon2 cost, rate limits, verification by mail). The accounts
//!    whose password cost matters (a lock-out victim, an Argon2 flooder, a
//!    stranger who logs in) are registered there and verified with the code
//!    from the outbox.
//! 3. Per attack, a fresh normal server on that folder: the legitimate users
//!    connect (one socket each, 127.0.0.1-16) and set up their direct chats,
//!    the attack sets up what it needs, then the measured window: the
//!    legitimate users send at a fixed rate (open loop, as `run`), the attack
//!    runs (from 127.0.1.x), a prober connects and authenticates a new
//!    WebSocket every second (from 127.0.2.1), and the server's RSS and open
//!    descriptors are sampled every 100 ms. The server is stopped after.
//!
//! The report per attack: peak RSS and descriptors, the legitimate users'
//! p99, what was lost, whether every probe was accepted, and what the
//! attacker got (a line per attack); as a Markdown table too.

pub mod attacks;
pub mod server;

use super::conn::{self, SocketOptions};
use super::creds::Credentials;
use super::procfs::{self, RssWatch};
use super::provision::{provision, ProvisionOptions};
use super::run::{self, FleetOptions, PhaseOptions};
use super::workload::{self, Kind, Sealed};
use attacks::Outcome;
use ferrogram_client::{RegisterParams, ServerAddr};
use serde::Serialize;
use server::ServerProcess;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Password of the accounts registered on the normal server.
pub const NORMAL_PASSWORD: &str = "abuse test password, test accounts only";
/// The targets of issue 11.
pub const TARGET_RSS_MIB: f64 = 512.0;
pub const TARGET_P99_MS: f64 = 250.0;
/// Most sockets the `many-sockets` attacker can open: this process's
/// descriptor limit (raised to 65,536 if allowed) bounds it further.
const MAX_ATTACK_SOCKETS: usize = 60_000;

/// One attack of issue 11 (the letter is its item in the brief).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// a) a WebSocket frame declaring 2^62 bytes, then a stream of data, before auth.
    HugeFrame,
    /// b) request bodies that never finish (Content-Length 100, 1 byte; 1 byte / 2 s).
    SlowBody,
    /// c) as many WebSockets as possible for one token from one address.
    ManySockets,
    /// d) a socket pipelining 400 history requests and 150 sockets of one
    ///    account receiving 64 KiB messages, none of them reading.
    NonReading,
    /// e) a victim added to many groups with a 64 KiB message each; her
    ///    chat.list and resume measured.
    ForceAdd,
    /// f) wrong log-ins for the victim's email while she logs in from elsewhere.
    Lockout,
    /// g) wrong password proofs (me.delete, me.change_password) while a
    ///    stranger logs in.
    Argon2,
    /// h) chat.typing and 64 KiB message.send as fast as one socket can.
    Flood,
    /// i) wrong verification codes for an unverified victim.
    CodeVoid,
}

impl Attack {
    pub const ALL: [Attack; 9] = [
        Attack::HugeFrame,
        Attack::SlowBody,
        Attack::ManySockets,
        Attack::NonReading,
        Attack::ForceAdd,
        Attack::Lockout,
        Attack::Argon2,
        Attack::Flood,
        Attack::CodeVoid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::HugeFrame => "huge-frame",
            Attack::SlowBody => "slow-body",
            Attack::ManySockets => "many-sockets",
            Attack::NonReading => "non-reading",
            Attack::ForceAdd => "force-add",
            Attack::Lockout => "lockout",
            Attack::Argon2 => "argon2",
            Attack::Flood => "flood",
            Attack::CodeVoid => "code-void",
        }
    }

    fn needs_normal_accounts(self) -> bool {
        matches!(self, Attack::Lockout | Attack::Argon2)
    }
}

/// How `abuse` runs.
#[derive(Debug, Clone)]
pub struct AbuseOptions {
    /// The `ferrogram-server` binary to start.
    pub server_bin: PathBuf,
    /// Where the data folder, configs and server log go (a new temporary
    /// folder when `None`, removed afterwards unless `keep`).
    pub work_dir: Option<PathBuf>,
    pub keep: bool,
    pub attacks: Vec<Attack>,
    /// The measured window of each attack.
    pub duration: Duration,
    /// Legitimate users and their messages per second, all together.
    pub users: usize,
    pub rate: f64,
    /// Most WebSockets the `many-sockets` attacker opens (also bounded by
    /// this process's open-file limit).
    pub max_sockets: usize,
    /// The server is killed when its RSS passes this (MiB), so that an
    /// attack that makes it grow without bound cannot take the machine down.
    pub rss_limit_mib: u64,
    pub progress: bool,
}

/// Accounts registered on the normal server (full Argon2 cost).
#[derive(Debug, Clone)]
pub struct NormalAccounts {
    pub lockout_victim: String,
    pub flooder: String,
    pub stranger: String,
    pub password: String,
}

/// What an attack works with.
pub struct Env {
    pub addr: ServerAddr,
    pub data_dir: PathBuf,
    /// The provisioned accounts: the legitimate users first, then these.
    pub creds: Arc<Credentials>,
    pub attacker: usize,
    pub helper: usize,
    pub victim: usize,
    pub normal: Option<NormalAccounts>,
    /// A sealed 64 KiB message for every identity.
    pub sealed: Arc<Sealed>,
    /// Sockets the `many-sockets` attacker may open.
    pub socket_budget: usize,
}

impl Env {
    /// The identity of a provisioned user (0 for anyone else).
    pub fn identity_of(&self, user_id: i64) -> usize {
        self.creds
            .users
            .iter()
            .find(|u| u.user_id.0 == user_id)
            .map_or(0, |u| u.identity)
    }
}

/// One attack's row.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AttackRow {
    pub attack: String,
    pub seconds: f64,
    pub rss_before_kib: u64,
    pub peak_rss_kib: u64,
    pub fds_before: u64,
    pub peak_fds: u64,
    pub legit_sent: u64,
    /// Receipts the sent messages should have had (one per recipient).
    pub legit_expected: u64,
    pub legit_delivered: u64,
    pub legit_p99_ms: f64,
    pub legit_max_ms: f64,
    /// Receipts acknowledged messages should have had and did not get.
    pub legit_lost: u64,
    pub legit_unacknowledged: u64,
    pub legit_refused: u64,
    /// Legitimate connections the server closed during the window.
    pub legit_dropped: u64,
    pub probes: u64,
    pub probes_accepted: u64,
    pub probe_max_ms: f64,
    pub attacker_actions: u64,
    /// The server passed the RSS limit and was killed.
    pub killed_at_rss_limit: bool,
    /// For attacks on one person: whether she was unharmed (see [`Outcome`]).
    pub victim_ok: Option<bool>,
    pub detail: String,
    /// Set when the attack itself failed (then the rest is what was measured).
    pub error: Option<String>,
}

impl AttackRow {
    pub fn accepted_throughout(&self) -> bool {
        self.probes > 0 && self.probes_accepted == self.probes
    }

    pub fn meets_targets(&self) -> bool {
        #[allow(clippy::cast_precision_loss)]
        let rss_mib = self.peak_rss_kib as f64 / 1024.0;
        rss_mib < TARGET_RSS_MIB
            && !self.killed_at_rss_limit
            && self.legit_p99_ms < TARGET_P99_MS
            && self.legit_lost == 0
            && self.legit_unacknowledged == 0
            && self.accepted_throughout()
            && self.victim_ok != Some(false)
    }
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AbuseReport {
    pub server_bin: String,
    pub users: usize,
    pub rate: f64,
    pub seconds: f64,
    /// The open-file limit the server ran with.
    pub server_nofile: Option<u64>,
    pub rows: Vec<AttackRow>,
}

impl AbuseReport {
    /// The Markdown table (for docs/security.md) and a line per attack.
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!(
            "{} legitimate users at {:.0} msg/s, {:.0} s per attack; server open-file limit {}.\n\n\
             | attack | peak RSS | peak fds | legit p99 | lost | new connections accepted? | victim unharmed? | targets met? |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |\n",
            self.users,
            self.rate,
            self.seconds,
            self.server_nofile
                .map_or_else(|| "?".to_owned(), |n| n.to_string())
        );
        #[allow(clippy::cast_precision_loss)]
        for row in &self.rows {
            let lost = row.legit_lost + row.legit_unacknowledged;
            let killed = if row.killed_at_rss_limit {
                ", server killed at the limit"
            } else {
                ""
            };
            let dropped = if row.legit_dropped > 0 {
                format!(" ({} connections dropped)", row.legit_dropped)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {:.0} MiB (from {:.0}{killed}) | {} (from {}) | {:.1} ms | {lost}{dropped} | {} ({} of {}, slowest {:.0} ms) | {} | {} |",
                row.attack,
                row.peak_rss_kib as f64 / 1024.0,
                row.rss_before_kib as f64 / 1024.0,
                row.peak_fds,
                row.fds_before,
                row.legit_p99_ms,
                if row.accepted_throughout() { "yes" } else { "NO" },
                row.probes_accepted,
                row.probes,
                row.probe_max_ms,
                match row.victim_ok {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                },
                if row.meets_targets() { "yes" } else { "no" },
            );
        }
        out.push('\n');
        for row in &self.rows {
            let _ = writeln!(out, "- **{}**: {}", row.attack, row.detail);
            if let Some(error) = &row.error {
                let _ = writeln!(out, "  (the attack stopped with an error: {error})");
            }
        }
        out
    }
}

fn say(progress: bool, text: impl AsRef<str>) {
    if progress {
        eprintln!("abuse: {}", text.as_ref());
    }
}

/// The work folder, removed on drop unless kept.
struct WorkDir {
    path: PathBuf,
    remove: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Runs the attacks and reports.
pub async fn abuse(options: &AbuseOptions) -> Result<AbuseReport, String> {
    let work = match &options.work_dir {
        Some(path) => WorkDir {
            path: path.clone(),
            remove: false,
        },
        None => WorkDir {
            path: std::env::temp_dir().join(format!(
                "ferrogram-abuse-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            )),
            remove: !options.keep,
        },
    };
    std::fs::create_dir_all(&work.path).map_err(|e| format!("{}: {e}", work.path.display()))?;
    say(
        options.progress,
        format!("work folder {}", work.path.display()),
    );
    // The server inherits this limit: as high as allowed, for both.
    let nofile = procfs::raise_nofile(65_536);
    let socket_budget = usize::try_from(nofile.saturating_sub(2_000))
        .unwrap_or(usize::MAX)
        .clamp(100, MAX_ATTACK_SOCKETS)
        .min(options.max_sockets);

    // 1. Accounts, made quickly in bench mode.
    let bench = ServerProcess::start(&options.server_bin, &work.path, true).await?;
    say(
        options.progress,
        format!("provisioning {} users (bench mode)", options.users + 3),
    );
    let creds = provision(&ProvisionOptions {
        addr: bench.addr.clone(),
        users: options.users + 3,
        identities: 2,
        concurrency: 16,
        prefix: format!("ab{:06x}", rand::random::<u32>() & 0xff_ffff),
        progress: false,
    })
    .await
    .map_err(|e| e.to_string())?;
    bench.stop().await;
    let identities = creds.decode_identities()?;
    let sealed =
        tokio::task::spawn_blocking(move || workload::seal_once(&identities, attacks::BIG_TEXT))
            .await
            .map_err(|e| e.to_string())??;
    let data_dir = work.path.join("data");

    // 2. Accounts with the normal costs, if an attack needs them.
    let normal = if options.attacks.iter().any(|a| a.needs_normal_accounts()) {
        let server = ServerProcess::start(&options.server_bin, &work.path, false).await?;
        say(options.progress, "registering the accounts of normal cost");
        let accounts = register_normal(&server.addr, &data_dir, &creds).await;
        server.stop().await;
        Some(accounts?)
    } else {
        None
    };

    let n = options.users;
    let creds = Arc::new(creds);
    let sealed = Arc::new(sealed);
    let mut report = AbuseReport {
        server_bin: options.server_bin.display().to_string(),
        users: n,
        rate: options.rate,
        seconds: options.duration.as_secs_f64(),
        ..AbuseReport::default()
    };
    for &attack in &options.attacks {
        let server = ServerProcess::start(&options.server_bin, &work.path, false).await?;
        report.server_nofile = procfs::nofile_of(server.pid);
        say(options.progress, format!("{}: setting up", attack.name()));
        let env = Arc::new(Env {
            addr: server.addr.clone(),
            data_dir: data_dir.clone(),
            creds: creds.clone(),
            attacker: n,
            helper: n + 1,
            victim: n + 2,
            normal: normal.clone(),
            sealed: sealed.clone(),
            socket_budget,
        });
        let row = measure(attack, env, &server, options).await;
        server.stop().await;
        let row = row?;
        say(
            options.progress,
            format!(
                "{}: peak RSS {:.0} MiB, peak fds {}, legit p99 {:.1} ms, lost {}, probes {}/{}; {}",
                row.attack,
                row.peak_rss_kib / 1024,
                row.peak_fds,
                row.legit_p99_ms,
                row.legit_lost,
                row.probes_accepted,
                row.probes,
                row.detail
            ),
        );
        report.rows.push(row);
    }
    Ok(report)
}

/// The first shared identity (accounts registered here use it: no RSA key
/// is generated).
pub(crate) fn first_identity(
    creds: &Credentials,
) -> Result<Arc<ferrogram_client::Identity>, String> {
    Ok(Arc::new(
        creds
            .decode_identities()?
            .into_iter()
            .next()
            .ok_or("no identity")?,
    ))
}

/// Registers and verifies the accounts of normal cost (identities shared
/// with the provisioned users, so no RSA key is generated).
async fn register_normal(
    addr: &ServerAddr,
    data_dir: &std::path::Path,
    creds: &Credentials,
) -> Result<NormalAccounts, String> {
    let client = attacks::rest_client(addr, IpAddr::V4(Ipv4Addr::new(127, 0, 3, 1))).await?;
    let identity = first_identity(creds)?;
    let tag = rand::random::<u32>();
    let mut emails = Vec::new();
    for role in ["lockout", "flooder", "stranger"] {
        let email = format!("{role}-{tag:08x}@loadgen.invalid");
        let handle = format!("{role}_{tag:08x}");
        client
            .register(
                RegisterParams::new(&email, &handle, role, NORMAL_PASSWORD)
                    .with_identity(identity.clone()),
            )
            .await
            .map_err(|e| format!("registering {email}: {e}"))?;
        let code = server::mailed_code(data_dir, &email).await?;
        client
            .verify_code(&email, &code)
            .await
            .map_err(|e| format!("verifying {email}: {e}"))?;
        emails.push(email);
    }
    Ok(NormalAccounts {
        stranger: emails.pop().unwrap_or_default(),
        flooder: emails.pop().unwrap_or_default(),
        lockout_victim: emails.pop().unwrap_or_default(),
        password: NORMAL_PASSWORD.to_owned(),
    })
}

/// What the prober saw.
#[derive(Debug, Default)]
struct Probes {
    tried: u64,
    accepted: u64,
    max_ms: f64,
}

/// Opens and authenticates a new WebSocket every second until `until`.
async fn probe(addr: ServerAddr, token: String, until: Instant) -> Probes {
    let mut probes = Probes::default();
    let source = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 2, 1)));
    while Instant::now() < until {
        let started = Instant::now();
        probes.tried += 1;
        let opened = tokio::time::timeout(
            Duration::from_secs(5),
            conn::connect(&addr, &token, SocketOptions::from(source)),
        )
        .await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        probes.max_ms = probes.max_ms.max(ms);
        if let Ok(Ok(mut socket)) = opened {
            probes.accepted += 1;
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
        }
        let next = started + Duration::from_secs(1);
        tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
    }
    probes
}

/// Kills the server once its RSS passes `limit_kib`; stops when `done`.
/// Answers whether it killed it.
async fn rss_guard(pid: u32, limit_kib: u64, done: Arc<std::sync::atomic::AtomicBool>) -> bool {
    use rustix::process::{kill_process, Pid, Signal};
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        if procfs::sample(pid).is_some_and(|s| s.rss_kib > limit_kib) {
            let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
                return false;
            };
            return kill_process(pid, Signal::KILL).is_ok();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// One attack's window against a running server.
async fn measure(
    attack: Attack,
    env: Arc<Env>,
    server: &ServerProcess,
    options: &AbuseOptions,
) -> Result<AttackRow, String> {
    let fleet = run::open_fleet(
        &env.creds,
        &FleetOptions {
            addr: server.addr.clone(),
            users: options.users,
            read_buffer: 64 * 1024,
        },
    )
    .await;
    let legit = run::setup_workload(&fleet, &env.creds, Kind::Direct { peers: 2 }, 1024).await?;
    let phase = |number, duration| PhaseOptions {
        rate: options.rate,
        duration,
        drain: Duration::from_secs(10),
        server_pid: None,
        message_bytes: 1024,
        seed: number,
        progress: false,
    };
    // Warm-up: every connection has sent and received before the window.
    run::run_phase(&fleet, &legit, 1, &phase(1, Duration::from_secs(1))).await;

    let (gate, keeper) = attacks::gate();
    let attack_task = tokio::spawn(attacks::run(attack, env.clone(), gate));
    let attack_failed = |e: Result<Result<Outcome, String>, tokio::task::JoinError>| match e {
        Ok(Ok(_)) => "the attack ended before its window".to_owned(),
        Ok(Err(e)) => e,
        Err(e) => e.to_string(),
    };
    let mut attack_task = attack_task;
    tokio::select! {
        ready = keeper.ready => if ready.is_err() {
            return Err(format!("{}: {}", attack.name(), attack_failed(attack_task.await)));
        },
        done = &mut attack_task => {
            return Err(format!("{}: {}", attack.name(), attack_failed(done)));
        }
    }
    let before = procfs::sample(server.pid);
    let fds_before = procfs::fd_count(server.pid).unwrap_or(0);
    let watch = RssWatch::start_with(server.pid, Duration::from_millis(100), true);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let guard = tokio::spawn(rss_guard(
        server.pid,
        options.rss_limit_mib * 1024,
        done.clone(),
    ));
    let started = Instant::now();
    let until = started + options.duration;
    let _ = keeper.go.send(until);
    say(
        options.progress,
        format!(
            "{}: attacking for {:.0} s",
            attack.name(),
            options.duration.as_secs_f64()
        ),
    );
    let probe_task = tokio::spawn(probe(
        server.addr.clone(),
        env.creds.users[0].token.clone(),
        until,
    ));
    let report = run::run_phase(&fleet, &legit, 2, &phase(2, options.duration)).await;
    let outcome = attack_task.await.map_err(|e| e.to_string()).and_then(|r| r);
    let probes = probe_task.await.unwrap_or_default();
    let peaks = watch.finish().await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let killed = guard.await.unwrap_or(false);
    fleet.close();
    let (outcome, error) = match outcome {
        Ok(outcome) => (outcome, None),
        Err(e) => (Outcome::default(), Some(e)),
    };
    Ok(AttackRow {
        attack: attack.name().to_owned(),
        seconds: started.elapsed().as_secs_f64(),
        rss_before_kib: before.map_or(0, |s| s.rss_kib),
        peak_rss_kib: peaks.rss_kib,
        fds_before,
        peak_fds: peaks.fds,
        legit_sent: report.sent,
        legit_expected: report.expected_deliveries,
        legit_delivered: report.delivered,
        legit_p99_ms: report.e2e_latency.p99_ms,
        legit_max_ms: report.e2e_latency.max_ms,
        legit_lost: report.lost,
        legit_unacknowledged: report.unacknowledged,
        legit_refused: report.errors.values().sum(),
        legit_dropped: report.connection_errors,
        probes: probes.tried,
        probes_accepted: probes.accepted,
        probe_max_ms: probes.max_ms,
        attacker_actions: outcome.actions,
        killed_at_rss_limit: killed,
        victim_ok: outcome.victim_ok,
        detail: outcome.detail,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(attack: &str, rss_mib: u64, p99: f64, lost: u64, probes: (u64, u64)) -> AttackRow {
        AttackRow {
            attack: attack.into(),
            peak_rss_kib: rss_mib * 1024,
            rss_before_kib: 20 * 1024,
            peak_fds: 90,
            fds_before: 60,
            legit_p99_ms: p99,
            legit_lost: lost,
            probes: probes.0,
            probes_accepted: probes.1,
            detail: format!("what {attack} did"),
            ..AttackRow::default()
        }
    }

    #[test]
    fn the_table_says_per_attack_whether_the_targets_hold() {
        let good = row("flood", 100, 40.0, 0, (20, 20));
        assert!(good.meets_targets());
        assert!(!row("a", 600, 40.0, 0, (20, 20)).meets_targets(), "RSS");
        assert!(!row("a", 100, 300.0, 0, (20, 20)).meets_targets(), "p99");
        assert!(!row("a", 100, 40.0, 1, (20, 20)).meets_targets(), "lost");
        assert!(!row("a", 100, 40.0, 0, (20, 19)).meets_targets(), "refused");
        assert!(
            !row("a", 100, 40.0, 0, (0, 0)).meets_targets(),
            "never probed"
        );
        let mut killed = good.clone();
        killed.killed_at_rss_limit = true;
        assert!(!killed.meets_targets());
        let mut harmed = good.clone();
        harmed.victim_ok = Some(false);
        assert!(!harmed.meets_targets());
        harmed.victim_ok = Some(true);
        assert!(harmed.meets_targets());
        let report = AbuseReport {
            users: 100,
            rate: 200.0,
            seconds: 20.0,
            server_nofile: Some(20_000),
            rows: vec![good, row("huge-frame", 4000, 900.0, 3, (20, 12))],
            ..AbuseReport::default()
        };
        let table = report.markdown();
        assert!(table.starts_with("100 legitimate users at 200 msg/s, 20 s per attack"));
        assert!(table.contains(
            "| flood | 100 MiB (from 20) | 90 (from 60) | 40.0 ms | 0 | yes (20 of 20, slowest 0 ms) | - | yes |"
        ), "{table}");
        assert!(
            table.contains(
                "| huge-frame | 4000 MiB (from 20) | 90 (from 60) | 900.0 ms | 3 | NO (12 of 20"
            ),
            "{table}"
        );
        assert!(
            table.contains("- **huge-frame**: what huge-frame did"),
            "{table}"
        );
    }
}
