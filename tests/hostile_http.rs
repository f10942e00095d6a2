//! A hostile client at the HTTP level (issue 11): request heads and bodies
//! that never finish, too many connections from one address, running the
//! process out of file descriptors, and the modes of the files the server
//! creates. Raw TCP sockets on loopback against the real server: in-process
//! where that suffices, the built binary where the process itself is the
//! subject (its log, its descriptor limit, its umask).

use ferrogram_server::config::Config;
use ferrogram_server::startup::{spawn_background, BackgroundServer};
use ferrogram_test_support::process::{server_command, ServerProcess};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

fn config(data_dir: &Path) -> Config {
    let mut config = Config::embedded_defaults();
    config.server.host = "127.0.0.1".into();
    config.server.port = 0;
    config.server.workers = 1;
    data_dir.clone_into(&mut config.data_dir);
    config.log.command_log = "".into();
    config
}

fn serve(customize: impl FnOnce(&mut Config)) -> (BackgroundServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    customize(&mut config);
    (spawn_background(config).unwrap(), dir)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Reads until the server closes (or resets) the connection; returns what
/// came and how long it took.
fn read_to_close(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "no close after {:?}: {e}; got {}",
                started.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

const LOGIN_HEAD: &str = "POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\n\
     Content-Type: application/json\r\nContent-Length: 100\r\n\r\n";

/// A simple GET that the server answers with 200 (and keeps the connection).
fn server_info(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /api/v1/server HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"}") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn a_stalled_body_is_answered_408_and_closed_at_its_deadline() {
    let (server, _dir) = serve(|c| {
        c.http.body_timeout_secs = 2;
        c.http.min_body_rate_bytes_per_sec = 0;
    });
    let mut stream = connect(server.addr);
    // Content-Length 100, one byte, then nothing.
    stream.write_all(LOGIN_HEAD.as_bytes()).unwrap();
    stream.write_all(b"{").unwrap();
    let (answer, took) = read_to_close(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "closed after {took:?}"
    );
}

#[test]
fn a_body_trickling_below_the_minimum_rate_is_cut() {
    let (server, _dir) = serve(|c| {
        c.http.body_timeout_secs = 60;
        c.http.min_body_rate_bytes_per_sec = 20;
        c.http.min_body_rate_grace_secs = 1;
    });
    let mut stream = connect(server.addr);
    stream.write_all(LOGIN_HEAD.as_bytes()).unwrap();
    // 5 bytes a second: a quarter of the minimum rate.
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..99 {
                if stream.write_all(b" ").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let (answer, took) = read_to_close(&mut stream);
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    // Due after the grace and the few bytes it covers (about 1.3 s), far
    // before the body deadline or the 20 s the whole body would take.
    assert!(took < Duration::from_secs(6), "cut after {took:?}");
    writer.join().unwrap();
}

#[test]
fn a_chunked_body_trickling_below_the_minimum_rate_is_cut_too() {
    let (server, _dir) = serve(|c| {
        c.http.body_timeout_secs = 60;
        c.http.min_body_rate_bytes_per_sec = 20;
        c.http.min_body_rate_grace_secs = 1;
    });
    let mut stream = connect(server.addr);
    stream
        .write_all(
            b"POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
    // One chunk of one byte every 200 ms, never the last chunk.
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..150 {
                if stream.write_all(b"1\r\n \r\n").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let (answer, took) = read_to_close(&mut stream);
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    // Not drained for the rest of the body: closed right after the answer.
    assert!(took < Duration::from_secs(6), "cut after {took:?}");
    writer.join().unwrap();
}

#[test]
fn a_request_head_that_never_ends_is_closed_at_its_deadline() {
    let (server, _dir) = serve(|c| c.http.header_timeout_secs = 1);
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET /api/v1/server HTTP/1.1\r\n")
        .unwrap();
    // A header line a byte at a time: each byte resets no timer.
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..100 {
                if stream.write_all(b"X").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let (answer, took) = read_to_close(&mut stream);
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
    writer.join().unwrap();
}

#[test]
fn connections_over_the_per_ip_cap_are_closed_until_one_ends() {
    let (server, _dir) = serve(|c| c.limits.max_connections_per_ip = 3);
    let mut held: Vec<TcpStream> = (0..3).map(|_| connect(server.addr)).collect();
    for stream in &mut held {
        assert!(server_info(stream).contains("200 OK"));
    }
    // The fourth is closed before anything is read from it.
    let mut fourth = connect(server.addr);
    let _ = fourth.write_all(b"GET /api/v1/server HTTP/1.1\r\nHost: x\r\n\r\n");
    let (answer, took) = read_to_close(&mut fourth);
    assert_eq!(answer, "", "refused without an answer");
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
    // One ends: a new one is served once the server has seen it go.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut next = connect(server.addr);
        if server_info(&mut next).contains("200 OK") {
            break;
        }
        assert!(Instant::now() < deadline, "no place freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    for stream in &mut held {
        assert!(
            server_info(stream).contains("200 OK"),
            "kept ones still work"
        );
    }
}

/// The built server binary on `data_dir`, configured through the
/// environment: port 0, one worker, and `env`.
fn start_process(data_dir: &Path, env: &[(&str, &str)]) -> ServerProcess {
    let mut cmd = server_command(env!("CARGO_BIN_EXE_ferrogram-server"));
    cmd.env("FERROGRAM__DATA_DIR", data_dir)
        .env("FERROGRAM__SERVER__PORT", "0")
        .env("FERROGRAM__SERVER__WORKERS", "1");
    for (key, value) in env {
        cmd.env(key, value);
    }
    ServerProcess::start(cmd)
}

/// actix-server's message when an accept fails for want of descriptors.
const SAID: &str = "Error accepting connection: Too many open files";

#[test]
fn out_of_descriptors_the_server_says_so_once_and_serves_again_when_they_free() {
    use rustix::process::{getrlimit, prlimit, Pid, Resource, Rlimit};
    let dir = tempfile::tempdir().unwrap();
    // Idle connections are held for a minute, so only the test frees them.
    let server = start_process(
        dir.path(),
        &[("FERROGRAM__HTTP__HEADER_TIMEOUT_SECS", "60")],
    );
    let mut first = connect(server.addr);
    assert!(server_info(&mut first).contains("200 OK"));
    drop(first);
    // Room for a few more descriptors only.
    let pid = Pid::from_raw(server.child.id() as i32).unwrap();
    let limit = (server.open_fds() + 4) as u64;
    prlimit(
        Some(pid),
        Resource::Nofile,
        Rlimit {
            current: Some(limit),
            // The one it inherited from this process.
            maximum: getrlimit(Resource::Nofile).maximum,
        },
    )
    .unwrap();
    // More connections than there are descriptors: the kernel completes
    // them all (the listen backlog); the server cannot accept the rest.
    let held: Vec<TcpStream> = (0..20).map(|_| connect(server.addr)).collect();
    server.wait_for_stderr(SAID, Duration::from_secs(10));
    // actix-server retries the accept twice a second, and fails each time:
    // over 3 s that would be about 6 lines.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        server.stderr_lines_with(SAID),
        1,
        "said once a minute at most: {:?}",
        server.stderr.lock().unwrap()
    );
    // Descriptors free: it serves again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut stream = connect(server.addr);
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        if server_info(&mut stream).contains("200 OK") {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover");
    }
}

#[test]
fn every_file_is_private_in_a_data_dir_made_0755_and_the_folder_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = start_process(&data, &[]);
    let mut stream = connect(server.addr);
    assert!(server_info(&mut stream).contains("200 OK"));
    server.wait_for_stderr(
        "data folder is readable by other users",
        Duration::from_secs(10),
    );

    let mut seen = Vec::new();
    let mut folders = vec![data.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let mode = meta.permissions().mode() & 0o777;
            let name = entry.file_name().to_string_lossy().into_owned();
            if meta.is_dir() {
                assert_eq!(mode, 0o700, "{name}: {mode:o}");
                folders.push(entry.path());
            } else {
                assert_eq!(mode, 0o600, "{name}: {mode:o}");
            }
            seen.push(name);
        }
    }
    for expected in [
        "ferrogram.db",
        "ferrogram.db-wal",
        "ferrogram.db-shm",
        "server_secret",
        "commands.log",
    ] {
        assert!(seen.iter().any(|n| n == expected), "{expected} in {seen:?}");
    }
}
