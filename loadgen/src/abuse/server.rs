//! The server `abuse` measures: a `ferrogram-server` process it starts itself
//! on a free loopback port, with a configuration file of its own and a data
//! folder that survives restarts (the accounts made in bench mode are used by
//! the normal server that follows), and what it leaves in that folder (the
//! database size, the verification mails of the outbox).

use ferrogram_client::ServerAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Time a starting server has to answer `GET /api/v1/server`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server process; killed when dropped.
pub struct ServerProcess {
    child: tokio::process::Child,
    pub pid: u32,
    pub addr: ServerAddr,
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

impl ServerProcess {
    /// Starts `bin` with its data in `dir/data`, in bench mode or not, and
    /// waits until it answers. Its log goes to `dir/server.log`.
    pub async fn start(bin: &Path, dir: &Path, bench: bool) -> Result<ServerProcess, String> {
        let port = free_port()?;
        let data = dir.join("data");
        let config = dir.join(if bench { "bench.yaml" } else { "normal.yaml" });
        // Paths are quoted as YAML strings: JSON string syntax is valid YAML.
        let text = format!(
            "server: {{host: \"127.0.0.1\", port: {port}}}\n\
             data_dir: {}\n\
             bench: {{enabled: {bench}}}\n\
             log: {{level: \"warn\"}}\n",
            serde_json::to_string(&data.display().to_string()).map_err(|e| e.to_string())?
        );
        std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .map_err(|e| format!("server.log: {e}"))?;
        let child = tokio::process::Command::new(bin)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id().ok_or("the server exited at once")?;
        let mut server = ServerProcess {
            child,
            pid,
            addr: ServerAddr::new("127.0.0.1", port),
        };
        let started = Instant::now();
        loop {
            if ferrogram_client::Client::connect(server.addr.clone())
                .await
                .is_ok()
            {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "{} exited with {status} (see {})",
                    bin.display(),
                    dir.join("server.log").display()
                ));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!("{} did not answer within 60 s", bin.display()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the server and waits for it (its data is durable: every
    /// acknowledged write was committed).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Bytes of the database files (`ferrogram.db`, its WAL and shared memory).
pub fn database_bytes(data_dir: &Path) -> u64 {
    ["ferrogram.db", "ferrogram.db-wal", "ferrogram.db-shm"]
        .iter()
        .filter_map(|name| std::fs::metadata(data_dir.join(name)).ok())
        .map(|m| m.len())
        .sum()
}

/// The newest verification code mailed to `email` (outbox transport),
/// waiting up to 10 s for the mail.
pub async fn mailed_code(data_dir: &Path, email: &str) -> Result<String, String> {
    let outbox = data_dir.join("outbox");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(code) = newest_code(&outbox, email) {
            return Ok(code);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no verification mail to {email} in {}",
                outbox.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn newest_code(outbox: &Path, email: &str) -> Option<String> {
    let mut mails: Vec<(std::time::SystemTime, PathBuf, String)> = std::fs::read_dir(outbox)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let text = std::fs::read_to_string(entry.path()).ok()?;
            let modified = entry.metadata().ok()?.modified().ok()?;
            text.to_lowercase()
                .contains(&email.to_lowercase())
                .then(|| (modified, entry.path(), text))
        })
        .collect();
    mails.sort();
    mails.iter().rev().find_map(|(_, _, text)| code_in(text))
}

/// The 6-digit code after "code is: " in a mail, in plain text or in a
/// base64-encoded part.
fn code_in(mail: &str) -> Option<String> {
    use base64::Engine as _;
    const MARK: &str = "code is: ";
    let find = |text: &str| -> Option<String> {
        let at = text.find(MARK)? + MARK.len();
        let code: String = text[at..].chars().take(6).collect();
        (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
    };
    if let Some(code) = find(mail) {
        return Some(code);
    }
    let mut block = String::new();
    for line in mail.lines().chain(std::iter::once("")) {
        let line = line.trim();
        let is_b64 = !line.is_empty()
            && line
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
        if is_b64 {
            block.push_str(line);
            continue;
        }
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&block) {
            if let Some(code) = find(&String::from_utf8_lossy(&bytes)) {
                return Some(code);
            }
        }
        block.clear();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_found_in_plain_and_base64_mails() {
        use base64::Engine as _;
        let plain = "To: a@b.c\r\n\r\nYour verification code is: 123456\r\n";
        assert_eq!(code_in(plain).as_deref(), Some("123456"));
        let encoded = base64::engine::general_purpose::STANDARD
            .encode("Hello,\nYour verification code is: 654321\nBye");
        let mail = format!("To: a@b.c\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n");
        assert_eq!(code_in(&mail).as_deref(), Some("654321"));
        assert_eq!(code_in("Your verification code is: 12ab56"), None);
    }
}
