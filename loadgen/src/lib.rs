//! `ferrogram-loadgen`: drives a Ferrogram server with thousands of
//! simulated users and reports throughput, latency percentiles and the
//! server's memory and CPU. See BENCHMARKS.md for the method.
//!
//! - `provision`: verified test users through the API (the server must run
//!   with `bench.enabled: true`), written to a credentials file.
//! - `run`: one WebSocket per user, a fixed duration at a target aggregate
//!   rate, open loop ([`schedule`]), 1:1, group or mixed traffic.
//! - `sweep`: raises the rate step by step; the highest rate whose p99 stays
//!   under a bound with nothing lost.
//! - `connections`: idle authenticated connections; server memory per connection.
//! - `abuse`: the attacks of issue 11 against a server it starts itself,
//!   while legitimate users exchange messages ([`abuse`]).

pub mod abuse;
pub mod conn;
pub mod creds;
pub mod declared;
pub mod procfs;
pub mod provision;
pub mod run;
pub mod schedule;
pub mod stats;
pub mod workload;

use clap::{Args, Parser, Subcommand, ValueEnum};
use creds::Credentials;
use ferrogram_client::ServerAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Drives a Ferrogram server with simulated users and measures it.
#[derive(Debug, Parser)]
#[command(name = "ferrogram-loadgen", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create verified test users (server in bench mode) and save their credentials.
    Provision(ProvisionArgs),
    /// Send a workload at a fixed rate for a fixed time and report.
    Run(RunArgs),
    /// Raise the rate step by step; report the highest that keeps p99 under a bound.
    Sweep(SweepArgs),
    /// Open idle authenticated connections; report server memory per connection.
    Connections(ConnectionsArgs),
    /// Start a server, attack it (issue 11) while legitimate users chat, report.
    Abuse(AbuseArgs),
}

#[derive(Debug, Args)]
pub struct AbuseArgs {
    /// Attacks to run, in this order (comma-separated; default: all nine).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub attack: Vec<abuse::Attack>,
    /// The ferrogram-server binary (default: the one beside this program).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Seconds each attack runs.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Legitimate users exchanging messages meanwhile.
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Their messages per second, all together (1 KiB, 1:1).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Most WebSockets the many-sockets attacker opens (the open-file limit
    /// of this process, shared with the server, bounds it too).
    #[arg(long, default_value_t = 12_000)]
    pub max_sockets: usize,
    /// Kill the server when its RSS passes this many MiB (an unbounded
    /// attack could otherwise exhaust the machine's memory).
    #[arg(long, default_value_t = 4096)]
    pub rss_limit_mib: u64,
    /// Folder for the server's data, configs and log (default: a temporary
    /// folder, removed afterwards).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the temporary folder.
    #[arg(long)]
    pub keep: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Server address (host:port or http://host:port).
    #[arg(long)]
    pub server: String,
    /// Users to create.
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// Credentials file to write (mode 0600: it holds session tokens).
    #[arg(long, default_value = "loadgen-users.json")]
    pub out: PathBuf,
    /// RSA identities generated and shared round-robin by the users.
    #[arg(long, default_value_t = 8)]
    pub identities: usize,
    /// Registrations and log-ins in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Prefix of emails and handles (default: random, so runs never collide).
    #[arg(long)]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadArg {
    /// 1:1 messages to random peers.
    Direct,
    /// Messages to the sender's group.
    Group,
    /// Group messages with probability --group-share, else 1:1.
    Mixed,
}

#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Credentials file written by `provision`.
    #[arg(long, default_value = "loadgen-users.json")]
    pub creds: PathBuf,
    /// Server address; default: the one in the credentials file.
    #[arg(long)]
    pub server: Option<String>,
    /// Users (connections) to use; default: all in the file.
    #[arg(long)]
    pub users: Option<usize>,
    /// The server's process id, to report its peak RSS and CPU time.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct WorkloadArgs {
    #[arg(long, value_enum, default_value_t = WorkloadArg::Direct)]
    pub workload: WorkloadArg,
    /// Direct chats per user (1:1 and mixed).
    #[arg(long, default_value_t = 4)]
    pub peers: usize,
    /// Members per group (group and mixed).
    #[arg(long, default_value_t = 100)]
    pub group_size: usize,
    /// Share of group messages in the mixed workload.
    #[arg(long, default_value_t = 0.5)]
    pub group_share: f64,
    /// Message text size in bytes (before padding and encryption).
    #[arg(long, default_value_t = 1024)]
    pub message_bytes: usize,
    /// Seconds at the target rate before the measured phase (not reported).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Longest wait in seconds for outstanding acks and receipts after sending.
    #[arg(long, default_value_t = 30.0)]
    pub drain: f64,
    /// Seed of the sender and chat choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl WorkloadArgs {
    pub fn kind(&self) -> workload::Kind {
        match self.workload {
            WorkloadArg::Direct => workload::Kind::Direct { peers: self.peers },
            WorkloadArg::Group => workload::Kind::Group {
                size: self.group_size,
            },
            WorkloadArg::Mixed => workload::Kind::Mixed {
                peers: self.peers,
                size: self.group_size,
                group_share: self.group_share.clamp(0.0, 1.0),
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Messages per second, all users together.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of the measured phase.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// First rate (messages per second).
    #[arg(long, default_value_t = 1000.0)]
    pub start: f64,
    /// Each step multiplies the rate by this.
    #[arg(long, default_value_t = 1.25)]
    pub factor: f64,
    /// Highest rate tried.
    #[arg(long, default_value_t = 100_000.0)]
    pub max: f64,
    /// Seconds per step.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// p99 end-to-end latency bound in ms.
    #[arg(long, default_value_t = 50.0)]
    pub p99_ms: f64,
}

#[derive(Debug, Args)]
pub struct ConnectionsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Seconds to let the server settle before and after measuring.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
    /// Seconds to keep the connections open after measuring.
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,
}

/// Exit status for bad arguments or an unusable credentials file.
const EXIT_USAGE: i32 = 2;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn random_prefix() -> String {
    format!("lg{:06x}", rand::random::<u32>() & 0xff_ffff)
}

fn write_json(path: Option<&PathBuf>, value: &impl serde::Serialize) -> Result<(), String> {
    let Some(path) = path else { return Ok(()) };
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

struct Loaded {
    creds: Credentials,
    addr: ServerAddr,
    users: usize,
}

fn load(common: &Common) -> Result<Loaded, String> {
    let creds = Credentials::load(&common.creds).map_err(|e| e.to_string())?;
    let server = common
        .server
        .clone()
        .unwrap_or_else(|| creds.server.clone());
    let addr = ServerAddr::parse(&server).map_err(|e| e.to_string())?;
    let users = common.users.unwrap_or(creds.users.len());
    if users > creds.users.len() {
        return Err(format!(
            "{} has {} users, {users} asked for (provision more)",
            common.creds.display(),
            creds.users.len()
        ));
    }
    Ok(Loaded { creds, addr, users })
}

/// File descriptors this process needs for `users` connections, and a
/// warning when the server's own limit is too low.
fn check_limits(users: usize, server_pid: Option<u32>) {
    let wanted = users as u64 + 1024;
    let limit = procfs::raise_nofile(wanted);
    if limit < wanted {
        eprintln!(
            "warning: open-file limit {limit} is below the {wanted} needed; raise `ulimit -n`"
        );
    }
    if let Some(limit) = server_pid.and_then(procfs::nofile_of) {
        // The server keeps the socket and a duplicate of it per connection.
        let needed = 2 * users as u64 + 256;
        if limit < needed {
            eprintln!(
                "warning: the server's open-file limit is {limit}; {users} connections need about \
                 {needed} (start it after `ulimit -n {}`)",
                needed.next_power_of_two()
            );
        }
    }
}

async fn prepare(
    loaded: &Loaded,
    workload: &WorkloadArgs,
    progress: bool,
) -> Result<(run::Fleet, std::sync::Arc<workload::Workload>), String> {
    let fleet = run::open_fleet(
        &loaded.creds,
        &run::FleetOptions {
            addr: loaded.addr.clone(),
            users: loaded.users,
            read_buffer: 64 * 1024,
        },
    )
    .await;
    if progress {
        eprintln!(
            "opened {} connections in {:.1} s ({} failed)",
            fleet.conns.len(),
            fleet.open_time.as_secs_f64(),
            fleet.open_errors
        );
    }
    let started = std::time::Instant::now();
    let prepared = run::setup_workload(
        &fleet,
        &loaded.creds,
        workload.kind(),
        workload.message_bytes,
    )
    .await?;
    if progress {
        eprintln!(
            "set up {} chats in {:.1} s",
            prepared.chats.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok((fleet, prepared))
}

fn phase_options(
    common: &Common,
    workload: &WorkloadArgs,
    rate: f64,
    duration: f64,
) -> run::PhaseOptions {
    run::PhaseOptions {
        rate,
        duration: secs(duration),
        drain: secs(workload.drain),
        server_pid: common.server_pid,
        message_bytes: workload.message_bytes,
        seed: workload.seed,
        progress: true,
    }
}

async fn warm_up(
    fleet: &run::Fleet,
    prepared: &workload::Workload,
    options: &run::PhaseOptions,
    seconds: f64,
) {
    if seconds > 0.0 {
        eprintln!("warm-up: {seconds} s at {:.0} msg/s", options.rate);
        let warm = run::PhaseOptions {
            duration: secs(seconds),
            server_pid: None,
            progress: false,
            drain: secs(5.0),
            ..options.clone()
        };
        run::run_phase(fleet, prepared, 1, &warm).await;
    }
}

async fn cmd_run(args: RunArgs) -> Result<(), String> {
    let loaded = load(&args.common)?;
    check_limits(loaded.users, args.common.server_pid);
    let (fleet, prepared) = prepare(&loaded, &args.workload, true).await?;
    let options = phase_options(&args.common, &args.workload, args.rate, args.duration);
    warm_up(&fleet, &prepared, &options, args.workload.warmup).await;
    let report = run::run_phase(&fleet, &prepared, 2, &options).await;
    fleet.close();
    println!("{}", report.table());
    write_json(args.common.json.as_ref(), &report)
}

async fn cmd_sweep(args: SweepArgs) -> Result<(), String> {
    let loaded = load(&args.common)?;
    check_limits(loaded.users, args.common.server_pid);
    let (fleet, prepared) = prepare(&loaded, &args.workload, true).await?;
    let first = phase_options(&args.common, &args.workload, args.start, args.duration);
    warm_up(&fleet, &prepared, &first, args.workload.warmup).await;
    let mut steps = Vec::new();
    let mut rate = args.start;
    let mut number = 2;
    while rate <= args.max {
        let options = phase_options(&args.common, &args.workload, rate, args.duration);
        let report = run::run_phase(&fleet, &prepared, number, &options).await;
        let (passed, why) = run::judge(&report, args.p99_ms);
        println!(
            "rate {rate:>9.0} msg/s: {} ({why}); delivered {:.0}/s, p99 {:.1} ms",
            if passed { "pass" } else { "FAIL" },
            report.delivered_per_sec,
            report.e2e_latency.p99_ms
        );
        steps.push(run::SweepStep {
            rate,
            passed,
            why,
            report,
        });
        if !passed {
            break;
        }
        rate *= args.factor.max(1.01);
        number += 1;
        // Let the server's queues empty between steps.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    fleet.close();
    let best = steps
        .iter()
        .filter(|s| s.passed)
        .map(|s| s.rate)
        .fold(0.0, f64::max);
    match steps.iter().rfind(|s| s.passed) {
        Some(step) => println!(
            "\nhighest passing rate: {best:.0} msg/s (p99 bound {} ms)\n{}",
            args.p99_ms,
            step.report.table()
        ),
        None => println!("\nno rate passed (p99 bound {} ms)", args.p99_ms),
    }
    write_json(
        args.common.json.as_ref(),
        &serde_json::json!({"p99_bound_ms": args.p99_ms, "best_rate": best, "steps": steps}),
    )
}

async fn cmd_connections(args: ConnectionsArgs) -> Result<(), String> {
    let loaded = load(&args.common)?;
    check_limits(loaded.users, args.common.server_pid);
    let report = run::connections(
        &loaded.creds,
        &run::FleetOptions {
            addr: loaded.addr.clone(),
            users: loaded.users,
            read_buffer: 4 * 1024,
        },
        args.common.server_pid,
        secs(args.settle),
        secs(args.hold),
    )
    .await;
    println!("{}", report.table());
    write_json(args.common.json.as_ref(), &report)
}

async fn cmd_abuse(args: AbuseArgs) -> Result<(), String> {
    let server_bin = match args.server_bin {
        Some(path) => path,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("ferrogram-server"),
    };
    let report = abuse::abuse(&abuse::AbuseOptions {
        server_bin,
        work_dir: args.work_dir,
        keep: args.keep,
        attacks: if args.attack.is_empty() {
            abuse::Attack::ALL.to_vec()
        } else {
            args.attack
        },
        duration: secs(args.duration),
        users: args.users.max(2),
        rate: args.rate,
        max_sockets: args.max_sockets,
        rss_limit_mib: args.rss_limit_mib,
        progress: true,
    })
    .await?;
    println!("{}", report.markdown());
    write_json(args.json.as_ref(), &report)
}

async fn cmd_provision(args: ProvisionArgs) -> Result<(), String> {
    let addr = ServerAddr::parse(&args.server).map_err(|e| e.to_string())?;
    procfs::raise_nofile(args.concurrency as u64 + 1024);
    let started = std::time::Instant::now();
    let creds = provision::provision(&provision::ProvisionOptions {
        addr,
        users: args.users,
        identities: args.identities,
        concurrency: args.concurrency,
        prefix: args.prefix.unwrap_or_else(random_prefix),
        progress: true,
    })
    .await
    .map_err(|e| e.to_string())?;
    creds.save(&args.out).map_err(|e| e.to_string())?;
    println!(
        "{} users provisioned in {:.1} s; credentials in {}",
        creds.users.len(),
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

/// Runs the command line; the process exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ferrogram-loadgen: cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Provision(args) => cmd_provision(args).await,
            Command::Run(args) => cmd_run(args).await,
            Command::Sweep(args) => cmd_sweep(args).await,
            Command::Connections(args) => cmd_connections(args).await,
            Command::Abuse(args) => cmd_abuse(args).await,
        }
    });
    // Connections still open are simply dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ferrogram-loadgen: {e}");
            if e.contains("credentials") || e.contains("asked for") {
                EXIT_USAGE
            } else {
                1
            }
        }
    }
}
