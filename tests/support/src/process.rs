//! The built `ferrogram-server` binary as a child process, configured
//! through the environment, for tests where the process itself is the
//! subject (its exit, its log, its descriptor limit, its umask, a SIGKILL).
//!
//! Cargo tells only the server's own test binaries where the binary is:
//! they pass `env!("CARGO_BIN_EXE_ferrogram-server")`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the binary may take to print its startup message.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A command running `binary` with none of this process's `FERROGRAM__`
/// variables nor `RUST_LOG`: only what the test sets configures it.
pub fn server_command(binary: &str) -> Command {
    let mut cmd = Command::new(binary);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("FERROGRAM__") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

/// The server binary, running; killed when dropped.
pub struct ServerProcess {
    pub child: Child,
    /// Where it listens, from its startup message.
    pub addr: SocketAddr,
    /// Every line it wrote to stderr so far.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Spawns `cmd` (see [`server_command`]) and waits for its startup
    /// message to learn the address. Stdout and stderr are read all along,
    /// so the server never writes into a full pipe.
    pub fn start(mut cmd: Command) -> ServerProcess {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        {
            let lines = stderr.clone();
            let pipe = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.trim().strip_prefix("listening on") {
                    let addr = addr.trim().trim_start_matches("http://").to_owned();
                    let _ = tx.send(
                        addr.parse::<SocketAddr>()
                            .unwrap_or_else(|_| panic!("no address in {line:?}")),
                    );
                }
            }
        });
        let Ok(addr) = rx.recv_timeout(STARTUP_TIMEOUT) else {
            let _ = child.kill();
            panic!(
                "no startup message within {STARTUP_TIMEOUT:?}; stderr: {:?}",
                stderr.lock().unwrap()
            );
        };
        ServerProcess {
            child,
            addr,
            stderr,
        }
    }

    pub fn stderr_lines_with(&self, needle: &str) -> usize {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until a line of stderr contains `needle`.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.stderr_lines_with(needle) == 0 {
            assert!(
                Instant::now() < deadline,
                "no `{needle}` in {:?}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many file descriptors the process has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// SIGKILL: no shutdown, no flush, no goodbye.
    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
