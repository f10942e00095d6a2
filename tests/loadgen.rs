//! ferrogram-loadgen against the real server on port 0: provisioning needs
//! the server's bench mode (off by default), and a short low-rate run
//! delivers every message exactly once.

use ferrogram_client::ServerAddr;
use ferrogram_loadgen::creds::Credentials;
use ferrogram_loadgen::provision::{provision, ProvisionError, ProvisionOptions};
use ferrogram_loadgen::run::{self, FleetOptions, PhaseOptions};
use ferrogram_loadgen::workload::Kind;
use ferrogram_server::config::Config;
use ferrogram_server::startup::{spawn_background, BackgroundServer};
use std::time::Duration;

fn server(dir: &std::path::Path, bench: bool) -> BackgroundServer {
    let mut config = Config::embedded_defaults();
    config.server.port = 0;
    config.server.workers = 1;
    dir.clone_into(&mut config.data_dir);
    config.bench.enabled = bench;
    spawn_background(config).unwrap()
}

fn options(server: &BackgroundServer, users: usize) -> ProvisionOptions {
    ProvisionOptions {
        addr: ServerAddr::parse(&server.base_url).unwrap(),
        users,
        identities: 1,
        concurrency: 4,
        prefix: "lgtest".into(),
        progress: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_needs_bench_mode_which_is_off_by_default() {
    assert!(!Config::embedded_defaults().bench.enabled);
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), false);
    let err = provision(&options(&server, 2)).await.unwrap_err();
    assert!(matches!(err, ProvisionError::NotBenchMode(_)), "{err}");
    assert!(err.to_string().contains("bench.enabled"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_delivers_every_message_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), true);
    let creds = provision(&options(&server, 6)).await.unwrap();
    assert_eq!(creds.users.len(), 6);
    // the credentials file round-trips
    let path = dir.path().join("users.json");
    creds.save(&path).unwrap();
    let creds = Credentials::load(&path).unwrap();

    let fleet = run::open_fleet(
        &creds,
        &FleetOptions {
            addr: ServerAddr::parse(&server.base_url).unwrap(),
            users: 6,
            read_buffer: 16 * 1024,
        },
    )
    .await;
    assert_eq!(fleet.conns.len(), 6, "{:?}", fleet.first_error);
    for (phase, kind, rate) in [
        (2, Kind::Direct { peers: 2 }, 50.0),
        (3, Kind::Group { size: 3 }, 25.0),
    ] {
        let workload = run::setup_workload(&fleet, &creds, kind, 256)
            .await
            .unwrap();
        let report = run::run_phase(
            &fleet,
            &workload,
            phase,
            &PhaseOptions {
                rate,
                duration: Duration::from_secs(2),
                drain: Duration::from_secs(10),
                server_pid: Some(std::process::id()),
                message_bytes: 256,
                seed: 7,
                progress: false,
            },
        )
        .await;
        let expected_sent = (rate * 2.0) as u64;
        let recipients = (kind.group_size() - 1) as u64;
        assert_eq!(report.sent, expected_sent, "{}", report.table());
        assert_eq!(report.acknowledged, expected_sent, "{}", report.table());
        assert_eq!(report.expected_deliveries, expected_sent * recipients);
        assert_eq!(
            report.delivered,
            report.expected_deliveries,
            "{}",
            report.table()
        );
        assert_eq!(report.lost, 0);
        assert_eq!(report.duplicated, 0);
        assert!(report.clean(), "{}", report.table());
        assert_eq!(report.e2e_latency.count, report.delivered);
        assert!(report.e2e_latency.max_ms < 5_000.0, "{}", report.table());
        let usage = report.server.unwrap();
        assert!(usage.peak_rss_kib > 0 && usage.cpu_seconds > 0.0);
        #[allow(clippy::cast_precision_loss)]
        let per_message = usage.cpu_seconds * 1e6 / report.sent as f64;
        assert!((usage.cpu_us_per_message - per_message).abs() < 1e-6);
        // Here the server runs in the generator's process: both see the
        // same process's CPU time, read moments apart.
        let generator = report.generator.unwrap();
        assert!(generator.cpu_seconds > 0.0, "{}", report.table());
        assert!(
            (generator.cpu_seconds - usage.cpu_seconds).abs() < 0.5,
            "{}",
            report.table()
        );
        assert!(report.table().contains("µs per message"));
    }
    // A connection lost before a phase is missing from it: the phase says so.
    let workload = run::setup_workload(&fleet, &creds, Kind::Direct { peers: 2 }, 256)
        .await
        .unwrap();
    fleet.conns[0].close();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fleet
        .shared
        .dropped
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the connection never closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = run::run_phase(
        &fleet,
        &workload,
        4,
        &PhaseOptions {
            rate: 50.0,
            duration: Duration::from_secs(1),
            drain: Duration::from_secs(3),
            server_pid: None,
            message_bytes: 256,
            seed: 7,
            progress: false,
        },
    )
    .await;
    assert_eq!(report.connection_errors, 1, "{}", report.table());
    assert!(!report.clean(), "{}", report.table());
    fleet.close();
}

/// `ferrogram-loadgen abuse` against the debug server binary, every attack
/// for a short window: the report has a sane row for each (the targets are
/// not checked here: a debug server is far slower than a release one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abuse_run_reports_every_attack() {
    use ferrogram_loadgen::abuse::{abuse, AbuseOptions, Attack};
    let dir = tempfile::tempdir().unwrap();
    let report = abuse(&AbuseOptions {
        server_bin: env!("CARGO_BIN_EXE_ferrogram-server").into(),
        work_dir: Some(dir.path().to_owned()),
        keep: true,
        attacks: Attack::ALL.to_vec(),
        duration: Duration::from_secs(3),
        users: 4,
        rate: 20.0,
        max_sockets: 200,
        rss_limit_mib: 2048,
        progress: false,
    })
    .await
    .unwrap();
    let table = report.markdown();
    assert_eq!(report.rows.len(), Attack::ALL.len(), "{table}");
    for (row, attack) in report.rows.iter().zip(Attack::ALL) {
        assert_eq!(row.attack, attack.name());
        assert_eq!(row.error, None, "{table}");
        assert!(row.seconds >= 3.0, "{table}");
        assert!(
            row.rss_before_kib > 0 && row.peak_rss_kib >= row.rss_before_kib,
            "{table}"
        );
        assert!(
            row.fds_before > 0 && row.peak_fds >= row.fds_before,
            "{table}"
        );
        // Legitimate traffic was sent; what reached whom is the attack's
        // effect (today some attacks stop all delivery), but it adds up.
        assert!(row.legit_sent >= 40, "{table}");
        assert!(row.legit_expected >= row.legit_sent, "{table}");
        assert!(
            row.legit_delivered + row.legit_lost >= row.legit_expected,
            "{table}"
        );
        assert!(row.legit_p99_ms <= row.legit_max_ms, "{table}");
        assert!(
            row.probes >= 2 && row.probes_accepted <= row.probes,
            "{table}"
        );
        assert!(row.attacker_actions > 0, "{table}");
        assert!(!row.detail.is_empty(), "{table}");
        assert!(table.contains(&format!("| {} |", attack.name())), "{table}");
    }
    // What some attacks must have done at all.
    let row = |a: Attack| &report.rows[Attack::ALL.iter().position(|x| *x == a).unwrap()];
    assert!(
        row(Attack::ManySockets)
            .detail
            .contains("WebSockets open at once"),
        "{table}"
    );
    assert!(
        row(Attack::ForceAdd).detail.contains("chat.list"),
        "{table}"
    );
    assert!(
        row(Attack::CodeVoid)
            .detail
            .contains("her right code afterwards"),
        "{table}"
    );
    assert!(
        row(Attack::Argon2)
            .detail
            .contains("a stranger's log-ins meanwhile: ok"),
        "{table}"
    );
    assert!(
        row(Attack::Lockout).detail.contains("her own log-ins"),
        "{table}"
    );
    assert!(
        table.starts_with("4 legitimate users at 20 msg/s"),
        "{table}"
    );
    assert!(table.contains("| attack | peak RSS | peak fds | legit p99 | lost |"));
    // Attacks on one person say whether she was harmed; the others do not.
    for (attack, row) in Attack::ALL.iter().zip(&report.rows) {
        let personal = matches!(
            attack,
            Attack::ForceAdd | Attack::Lockout | Attack::Argon2 | Attack::CodeVoid
        );
        assert_eq!(row.victim_ok.is_some(), personal, "{table}");
    }
}
