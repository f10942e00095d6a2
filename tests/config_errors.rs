//! Runs the built `ferrogram-server` binary: a bad configuration exits with
//! status 2 and one line naming the key or file; a good one on port 0 prints
//! the startup message and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary with none of this process's `FERROGRAM__` variables nor
/// `RUST_LOG`. (Like `ferrogram_test_support::process::server_command`; this
/// binary links nothing of the server, and the support crate would take it
/// from 7 MB to 33 MB.)
fn server() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrogram-server"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("FERROGRAM__") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

fn run_to_end(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Asserts exit status 2 and exactly one line on stderr; returns the line.
fn assert_config_error(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout");
    lines[0].to_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn unknown_key_in_config_file_exits_2_naming_the_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "local.yaml", "server:\n  prot: 9000\n");
    let line = assert_config_error(&run_to_end(server().arg("--config").arg(&file)));
    assert!(line.contains("server.prot"), "{line}");
    assert!(line.contains("local.yaml"), "{line}");
}

#[test]
fn bad_type_in_environment_exits_2_naming_the_variable() {
    let line = assert_config_error(&run_to_end(
        server().env("FERROGRAM__SERVER__PORT", "eighty"),
    ));
    assert!(line.contains("server.port"), "{line}");
    assert!(line.contains("FERROGRAM__SERVER__PORT"), "{line}");
}

#[test]
fn missing_config_file_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.yaml");
    let line = assert_config_error(&run_to_end(server().arg("--config").arg(&missing)));
    assert!(line.contains("absent.yaml"), "{line}");
}

#[test]
fn unreadable_tls_certificate_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let line = assert_config_error(&run_to_end(
        server()
            .env("FERROGRAM__DATA_DIR", dir.path())
            .env("FERROGRAM__TLS__CERT", "no-such-cert.pem")
            .env("FERROGRAM__TLS__KEY", "no-such-key.pem"),
    ));
    assert!(line.contains("tls.cert"), "{line}");
    assert!(line.contains("no-such-cert.pem"), "{line}");
    assert!(
        !dir.path().join("server_secret").exists(),
        "nothing started"
    );
}

#[test]
fn good_config_on_port_0_prints_the_startup_message_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = write(
        dir.path(),
        "local.yaml",
        &format!(
            "server:\n  port: 0\n  workers: 1\ndata_dir: \"{}\"\n",
            data.display()
        ),
    );
    let mut child = server()
        .arg("--config")
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut message = Vec::new();
    while message.len() < 5 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            panic!("no complete startup message, got {message:?}");
        };
        message.push(line);
    }
    let text = message.join("\n");
    assert!(
        text.contains(&format!("Ferrogram server {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let listening = message
        .iter()
        .find_map(|l| l.trim().strip_prefix("listening on"))
        .unwrap_or_else(|| panic!("no address in {text}"))
        .trim()
        .to_owned();
    assert!(listening.starts_with("http://127.0.0.1:"), "{text}");
    assert!(!listening.ends_with(":0"), "the real port is shown: {text}");
    assert!(text.contains("ferrogram.db"), "{text}");
    assert!(text.contains("mail") && text.contains("outbox"), "{text}");

    // It really serves on that address.
    let port: u16 = listening.rsplit(':').next().unwrap().parse().unwrap();
    let stream = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(stream.is_ok(), "cannot connect to {listening}");
    drop(stream);

    // Zero config wrote its secret into the data folder, private.
    let secret = std::fs::metadata(data.join("server_secret")).unwrap();
    assert_eq!(secret.len(), 32);
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&secret.permissions()) & 0o777,
        0o600
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "graceful stop exits 0, got {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("server did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
