//! The CLI's files in its config folder (`~/.config/ferrogram` by default):
//! `cli.toml`, written by the user, `session.json`, the stored log-in
//! (mode 0600, since it holds the bearer token), and `keys.json`, the
//! private keys sealed with the password-derived key (mode 0600 too).

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use ferrogram_client::LockedKeys;

pub const CONFIG_FILE: &str = "cli.toml";
pub const SESSION_FILE: &str = "session.json";
pub const KEYS_FILE: &str = "keys.json";

/// The config folder: `$FERROGRAM_CLI_DIR` (via the flag), else
/// `$XDG_CONFIG_HOME/ferrogram`, else `~/.config/ferrogram`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("ferrogram"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|home| PathBuf::from(home).join(".config").join("ferrogram"))
}

/// What `cli.toml` may say. A small TOML subset: `key = "string"` lines and
/// `#` comments.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CliConfig {
    /// `host:port` or `http(s)://host:port`.
    pub server: Option<String>,
    /// Extra CA certificate (PEM) to trust for TLS.
    pub ca_file: Option<PathBuf>,
    /// Device name shown in the list of sessions.
    pub device_name: Option<String>,
}

impl CliConfig {
    pub fn load(dir: &Path) -> Result<CliConfig, String> {
        let path = dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CliConfig::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    pub fn parse(text: &str) -> Result<CliConfig, String> {
        let mut config = CliConfig::default();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("line {line_no}: expected key = \"value\""))?;
            let value = parse_string(value.trim())
                .ok_or_else(|| format!("line {line_no}: the value must be a \"quoted string\""))?;
            match key.trim() {
                "server" => config.server = Some(value),
                "ca_file" => config.ca_file = Some(PathBuf::from(value)),
                "device_name" => config.device_name = Some(value),
                other => {
                    return Err(format!(
                    "line {line_no}: unknown key `{other}` (known: server, ca_file, device_name)"
                ))
                }
            }
        }
        Ok(config)
    }

    /// Writes a `cli.toml` naming `server` (used after the first prompt).
    pub fn write_server(dir: &Path, server: &str) -> Result<PathBuf, String> {
        let path = dir.join(CONFIG_FILE);
        let mut text = String::from("# ferrogram-cli settings (written after the first prompt)\n");
        let _ = writeln!(text, "server = {}", quote(server));
        create_private_dir(dir)?;
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}

fn parse_string(value: &str) -> Option<String> {
    // A trailing comment after the closing quote is allowed.
    let inner = value.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    loop {
        match chars.next()? {
            '"' => break,
            '\\' => match chars.next()? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    let rest: String = chars.collect();
    let rest = rest.trim();
    (rest.is_empty() || rest.starts_with('#')).then_some(out)
}

fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A stored log-in. The token is a secret: zeroized on drop, never printed.
#[derive(Serialize, Deserialize)]
pub struct StoredSession {
    /// The base URL of the server the token belongs to; it is never sent elsewhere.
    pub server: String,
    pub email: String,
    pub handle: String,
    pub user_id: i64,
    pub session_id: String,
    pub token: String,
}

impl std::fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSession")
            .field("server", &self.server)
            .field("email", &self.email)
            .field("session_id", &self.session_id)
            .field("token", &"<hidden>")
            .finish_non_exhaustive()
    }
}

impl Drop for StoredSession {
    fn drop(&mut self) {
        self.token.zeroize();
    }
}

impl StoredSession {
    pub fn load(dir: &Path) -> Result<Option<StoredSession>, String> {
        let path = dir.join(SESSION_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => Zeroizing::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is damaged ({e}); log in again", path.display()))
    }

    /// Writes the file with mode 0600 (through a temporary file and a rename,
    /// so a crash never leaves half a file).
    pub fn save(&self, dir: &Path) -> Result<PathBuf, String> {
        let json = Zeroizing::new(
            serde_json::to_vec_pretty(self).map_err(|e| format!("cannot encode session: {e}"))?,
        );
        write_private(dir, SESSION_FILE, &json)
    }

    /// Forgets the log-in: the session file and the stored keys.
    pub fn remove(dir: &Path) -> Result<(), String> {
        remove_file(&dir.join(KEYS_FILE))?;
        remove_file(&dir.join(SESSION_FILE))
    }
}

fn remove_file(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
    }
}

/// Writes `dir/name` with mode 0600 (through a temporary file and a rename,
/// so a crash never leaves half a file).
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    create_private_dir(dir)?;
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })?;
    Ok(path)
}

/// The account's private keys sealed with the password-derived key
/// ([`LockedKeys`]): useless without the password, still kept private.
/// Written at log-in, so message commands need only the password, not a
/// new log-in.
pub fn save_keys(dir: &Path, keys: &LockedKeys) -> Result<PathBuf, String> {
    let json = serde_json::to_vec_pretty(keys).map_err(|e| format!("cannot encode keys: {e}"))?;
    write_private(dir, KEYS_FILE, &json)
}

pub fn load_keys(dir: &Path) -> Result<Option<LockedKeys>, String> {
    let path = dir.join(KEYS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is damaged ({e}); log in again", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// True when only the owner may read the file.
#[allow(clippy::verbose_bit_mask)] // "no group or other bits" reads best as a mask
pub fn is_private(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_toml_subset() {
        let text = "# my server\n\nserver = \"chat.example.org:8443\"  # work\n\
                    ca_file = \"/etc/ca \\\"x\\\".pem\"\n  device_name=\"laptop\"\n";
        let config = CliConfig::parse(text).unwrap();
        assert_eq!(config.server.as_deref(), Some("chat.example.org:8443"));
        assert_eq!(config.ca_file, Some(PathBuf::from("/etc/ca \"x\".pem")));
        assert_eq!(config.device_name.as_deref(), Some("laptop"));
        assert_eq!(CliConfig::parse("").unwrap(), CliConfig::default());
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for (text, expected) in [
            ("servr = \"x\"", "unknown key `servr`"),
            ("server = x", "quoted string"),
            ("server = \"x", "quoted string"),
            ("server = \"x\" trailing", "quoted string"),
            ("server", "expected key"),
            ("\n\nserver = 'x'", "line 3"),
        ] {
            let err = CliConfig::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn written_config_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("nested");
        CliConfig::write_server(&sub, "https://h\"x:1").unwrap();
        let config = CliConfig::load(&sub).unwrap();
        assert_eq!(config.server.as_deref(), Some("https://h\"x:1"));
        assert_eq!(CliConfig::load(dir.path()).unwrap(), CliConfig::default());
    }

    #[test]
    fn session_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("ferrogram");
        assert!(StoredSession::load(&conf).unwrap().is_none());
        let stored = StoredSession {
            server: "http://127.0.0.1:1".into(),
            email: "a@b.org".into(),
            handle: "ada".into(),
            user_id: 7,
            session_id: "s1".into(),
            token: "secret-token".into(),
        };
        let path = stored.save(&conf).unwrap();
        assert!(is_private(&path));
        let dir_mode = std::fs::metadata(&conf).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o077, 0, "folder mode {dir_mode:o}");
        let back = StoredSession::load(&conf).unwrap().unwrap();
        assert_eq!(back.token.as_str(), "secret-token");
        assert_eq!(back.user_id, 7);
        // Saving again replaces it, still private.
        stored.save(&conf).unwrap();
        assert!(is_private(&path));
        StoredSession::remove(&conf).unwrap();
        assert!(StoredSession::load(&conf).unwrap().is_none());
        StoredSession::remove(&conf).unwrap();
        std::fs::write(&path, "{not json").unwrap();
        assert!(StoredSession::load(&conf)
            .unwrap_err()
            .contains("log in again"));
    }
}
