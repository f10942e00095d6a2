//! Server configuration: the documented `config.yaml` compiled into the binary,
//! laid under an optional file given with `--config`, laid under environment
//! variables `FERROGRAM__SECTION__KEY=value`.
//!
//! Layers are merged as YAML trees first and deserialized once, so an unknown
//! key or a value of the wrong type anywhere is an error that names its key
//! path (and the environment variable or file it came from).

use ferrogram_core::proto::KdfParams;
use ferrogram_core::ratelimit::RateRule;
use secrecy::SecretString;
use serde::Deserialize;
use serde_norway::{Mapping, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// The documented defaults, `config.yaml` at the repository root.
pub const EMBEDDED_CONFIG: &str = include_str!("../config.yaml");

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "FERROGRAM__";

/// Separator of levels in environment variable names.
const ENV_SEPARATOR: &str = "__";

/// Why a configuration could not be loaded. Each message is one line that
/// names the key or the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config: {key}: {message}{origin}")]
    Invalid {
        key: String,
        message: String,
        /// Where the value came from, e.g. ` (from FERROGRAM__SERVER__PORT)`.
        origin: String,
    },
    #[error("config: environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("config: tls.{key}: {path}: {message}")]
    Tls {
        key: &'static str,
        path: PathBuf,
        message: String,
    },
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_owned(),
            message: message.into(),
            origin: String::new(),
        }
    }
}

/// The longest `database.commit_delay_us`: a longer wait would add more to
/// every message's latency under load than it can save.
pub const MAX_COMMIT_DELAY_US: u64 = 50_000;

/// The largest frame the client library reads (`client/src/ws.rs`): no
/// reply may be larger.
pub const MAX_CLIENT_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Chats the client library names in one `resume` frame at most
/// (`client/src/messenger/sync.rs`): `limits.max_resume_chats` is at least this.
pub const MIN_RESUME_CHATS: usize = 1000;

/// The whole configuration. Fields are public so tests can adjust a loaded
/// configuration (for example `server.port = 0` and a temporary `data_dir`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    /// Everything the server keeps lives here; relative to the working directory.
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub mail: MailConfig,
    pub tls: TlsConfig,
    pub limits: LimitsConfig,
    pub websocket: WebSocketConfig,
    pub http: HttpConfig,
    pub security: SecurityConfig,
    pub log: LogConfig,
    pub bench: BenchConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// Base URL for email links; empty means `http(s)://host:bound_port`.
    pub public_url: String,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Relative to `data_dir`.
    pub path: PathBuf,
    pub pool_size: u32,
    /// The event writer's wait for company under load (see config.yaml).
    pub commit_delay_us: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    Outbox,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS; never sends without it.
    Starttls,
    /// Implicit TLS from the first byte.
    Tls,
    /// No encryption: only for a relay on the same machine.
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub from: String,
    pub transport: MailTransport,
    /// Relative to `data_dir`.
    pub outbox_dir: PathBuf,
    pub max_retries: u32,
    pub smtp: SmtpConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Empty: no authentication.
    pub username: String,
    pub password: SecretString,
    /// PEM file of CA certificates trusted for the SMTP server's certificate
    /// besides the system's, relative to `data_dir`; `None`: the system's only.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, relative to `data_dir`.
    pub cert: Option<PathBuf>,
    /// PEM private key, relative to `data_dir`.
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_body_bytes: usize,
    pub max_frame_bytes: usize,
    pub max_group_members: usize,
    pub max_message_bytes: usize,
    /// Open TCP connections (HTTP and WebSocket alike) one IP address may
    /// hold; more are closed at once.
    pub max_connections_per_ip: usize,
    /// Bytes of message and edit bodies one account may have stored; 0 means
    /// no limit. Over it: 507 quota_exceeded.
    pub account_storage_bytes: u64,
    /// Largest reply a list command builds (`chat.list`, `message.history`):
    /// a page ends before it, with at least one item; any other WebSocket reply
    /// larger than this becomes a `reply_too_large` error.
    pub max_reply_bytes: usize,
    /// Most chats one WebSocket `resume` frame may name.
    pub max_resume_chats: usize,
    /// Pending group invitations one account may hold; a new one drops the
    /// oldest.
    pub max_pending_invitations: usize,
    /// Seconds after which a group invitation is gone.
    pub invitation_ttl_secs: u64,
    pub rate_limits: RateLimitsConfig,
    /// Most entries (buckets and failure counters) the rate limiter holds.
    pub rate_limit_max_keys: usize,
    /// Open WebSockets of one login session at once.
    pub max_sockets_per_session: usize,
    /// Open WebSockets of one account at once.
    pub max_sockets_per_user: usize,
    /// Open WebSockets from one client IP address at once.
    pub max_sockets_per_ip: usize,
}

/// Deadlines for reading HTTP requests (`http:` in config.yaml).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Seconds a connection has to deliver a complete request head.
    pub header_timeout_secs: u64,
    /// Seconds a request has to deliver its whole body.
    pub body_timeout_secs: u64,
    /// Slowest accepted body transfer, in bytes per second, once
    /// `min_body_rate_grace_secs` have passed; 0 turns the check off.
    pub min_body_rate_bytes_per_sec: u64,
    /// Seconds at the start of a body before the minimum rate applies.
    pub min_body_rate_grace_secs: u64,
}

/// The WebSocket gateway (`GET /api/v1/ws`): timers and queue sizes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Seconds a new connection has to send its `auth` frame.
    pub auth_timeout_secs: u64,
    /// Seconds between two pings the server sends on every connection.
    pub heartbeat_interval_secs: u64,
    /// A connection that sent nothing (no frame, no pong) for this long is closed.
    pub client_timeout_secs: u64,
    /// Frames queued for one connection; a client that lets more pile up is
    /// too slow and is disconnected (it catches up with `resume`).
    pub outbound_queue: usize,
    /// Bytes queued for one connection (same treatment as `outbound_queue`).
    pub outbound_queue_bytes: usize,
    /// Bytes queued for all connections together.
    pub outbound_total_bytes: usize,
    /// Frames one connection may send per second, on average; reading
    /// pauses while it sends faster.
    pub max_frames_per_sec: u32,
    /// Frames one connection may send at once before `max_frames_per_sec`
    /// applies.
    pub frame_burst: u32,
    /// Invalid frames in a row after which a connection is closed.
    pub max_invalid_frames: u32,
    /// Seconds without events after which a chat's room actor stops.
    pub room_idle_secs: u64,
}

/// One rule per rate class; the class names are the ones handlers use (a
/// test checks that every command's class is here).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    pub register: RateRule,
    pub login: RateRule,
    pub prelogin: RateRule,
    pub verify: RateRule,
    pub resend: RateRule,
    pub password: RateRule,
    pub session: RateRule,
    pub profile: RateRule,
    pub info: RateRule,
    pub user_search: RateRule,
    pub user_lookup: RateRule,
    pub chat_create: RateRule,
    pub group_create: RateRule,
    pub add_members: RateRule,
    pub chat_admin: RateRule,
    pub read: RateRule,
    pub send: RateRule,
    pub edit: RateRule,
    pub receipts: RateRule,
    pub typing: RateRule,
}

impl RateLimitsConfig {
    /// Every class with its rule.
    pub fn each_mut(&mut self) -> [(&'static str, &mut RateRule); 20] {
        [
            ("register", &mut self.register),
            ("login", &mut self.login),
            ("prelogin", &mut self.prelogin),
            ("verify", &mut self.verify),
            ("resend", &mut self.resend),
            ("password", &mut self.password),
            ("session", &mut self.session),
            ("profile", &mut self.profile),
            ("info", &mut self.info),
            ("user_search", &mut self.user_search),
            ("user_lookup", &mut self.user_lookup),
            ("chat_create", &mut self.chat_create),
            ("group_create", &mut self.group_create),
            ("add_members", &mut self.add_members),
            ("chat_admin", &mut self.chat_admin),
            ("read", &mut self.read),
            ("send", &mut self.send),
            ("edit", &mut self.edit),
            ("receipts", &mut self.receipts),
            ("typing", &mut self.typing),
        ]
    }

    /// The rules keyed by rate class, as `RateLimiter::new` takes them.
    pub fn rules(&self) -> HashMap<String, RateRule> {
        let mut copy = self.clone();
        copy.each_mut()
            .into_iter()
            .map(|(class, rule)| (class.to_owned(), *rule))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Cost {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    pub registration_open: bool,
    pub session_ttl_hours: u32,
    pub verification_ttl_hours: u32,
    pub resend_cooldown_secs: u32,
    pub max_code_attempts: u32,
    pub auth_hash: Argon2Cost,
    pub min_client_kdf: Argon2Cost,
}

/// Load-testing mode (`bench.enabled`): cheap keys, verified accounts and no
/// rate limits, so `ferrogram-loadgen provision` is quick. Off by
/// default; never for a server with real users.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchConfig {
    pub enabled: bool,
}

/// The server's hash of auth keys in bench mode: the smallest Argon2id allows.
pub const BENCH_AUTH_HASH: Argon2Cost = Argon2Cost {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter; `RUST_LOG` overrides it.
    pub level: String,
    /// Relative to `data_dir`; empty disables the file.
    pub command_log: PathBuf,
    /// The command log is rotated when it would grow past this many bytes.
    pub command_log_max_bytes: u64,
    /// Rotated command logs kept (`commands.log.1` is the newest); older
    /// ones are deleted.
    pub command_log_keep: usize,
}

impl Config {
    /// The configuration of `config.yaml` alone, as compiled in.
    pub fn embedded_defaults() -> Config {
        let tree = parse_yaml(EMBEDDED_CONFIG, Path::new("config.yaml (built in)"))
            .expect("the built-in config.yaml is valid YAML");
        deserialize(tree, &Layers::default()).expect("the built-in config.yaml is a valid config")
    }

    /// Built-in defaults, then `extra` (if given), then `FERROGRAM__*`
    /// environment variables; validated, TLS files included.
    pub fn load(extra: Option<&Path>) -> Result<Config, ConfigError> {
        let mut env = Vec::new();
        for (key, value) in std::env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            if !key.starts_with(ENV_PREFIX) {
                continue;
            }
            let value = value.into_string().map_err(|_| ConfigError::Env {
                var: key.to_owned(),
                message: "value is not valid UTF-8".to_owned(),
            })?;
            env.push((key.to_owned(), value));
        }
        Self::load_from(extra, &env)
    }

    /// Like [`Config::load`], with the environment given explicitly (tests
    /// use this instead of mutating the process environment).
    pub fn load_from(
        extra: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut tree = parse_yaml(EMBEDDED_CONFIG, Path::new("config.yaml (built in)"))?;
        let mut layers = Layers::default();
        if let Some(path) = extra {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let file_tree = parse_yaml(&text, path)?;
            // An empty file is a valid (empty) layer.
            if !file_tree.is_null() {
                if !file_tree.is_mapping() {
                    return Err(ConfigError::Syntax {
                        path: path.to_owned(),
                        message: "expected a mapping of sections at the top level".to_owned(),
                    });
                }
                merge(&mut tree, file_tree.clone());
            }
            layers.file = Some((path.to_owned(), file_tree));
        }
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let segments: Vec<String> = rest
                .split(ENV_SEPARATOR)
                .map(str::to_ascii_lowercase)
                .collect();
            if segments.iter().any(String::is_empty) {
                return Err(ConfigError::Env {
                    var: var.clone(),
                    message: "empty key segment (use FERROGRAM__SECTION__KEY)".to_owned(),
                });
            }
            set_path(&mut tree, &segments, env_scalar(value));
            layers.env.push((segments.join("."), var.clone()));
        }
        let config = deserialize(tree, &layers)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot: ranges, formats, TLS files.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.host.trim().is_empty() {
            return Err(ConfigError::invalid("server.host", "must not be empty"));
        }
        let url = &self.server.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "server.public_url",
                "must start with http:// or https:// (or be empty)",
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data_dir", "must not be empty"));
        }
        if self.database.path.as_os_str().is_empty() {
            return Err(ConfigError::invalid("database.path", "must not be empty"));
        }
        if self.database.pool_size == 0 {
            return Err(ConfigError::invalid(
                "database.pool_size",
                "must be at least 1",
            ));
        }
        if self.database.commit_delay_us > MAX_COMMIT_DELAY_US {
            return Err(ConfigError::invalid(
                "database.commit_delay_us",
                format!("must be at most {MAX_COMMIT_DELAY_US} (50 ms)"),
            ));
        }
        if let Err(e) = lettre::message::Mailbox::from_str(&self.mail.from) {
            return Err(ConfigError::invalid(
                "mail.from",
                format!("not a valid mail address ({e})"),
            ));
        }
        if self.mail.transport == MailTransport::Outbox
            && self.mail.outbox_dir.as_os_str().is_empty()
        {
            return Err(ConfigError::invalid("mail.outbox_dir", "must not be empty"));
        }
        if self.mail.transport == MailTransport::Smtp {
            if self.mail.smtp.host.trim().is_empty() {
                return Err(ConfigError::invalid("mail.smtp.host", "must not be empty"));
            }
            if self.mail.smtp.port == 0 {
                return Err(ConfigError::invalid("mail.smtp.port", "must not be 0"));
            }
            if self.mail.smtp.ca_file.is_some() && self.mail.smtp.security == SmtpSecurity::None {
                return Err(ConfigError::invalid(
                    "mail.smtp.ca_file",
                    "only applies with security starttls or tls",
                ));
            }
        }
        if self.limits.max_body_bytes < 1024 {
            return Err(ConfigError::invalid(
                "limits.max_body_bytes",
                "must be at least 1024",
            ));
        }
        if self.limits.max_frame_bytes < 1024 {
            return Err(ConfigError::invalid(
                "limits.max_frame_bytes",
                "must be at least 1024",
            ));
        }
        if !(2..=100_000).contains(&self.limits.max_group_members) {
            return Err(ConfigError::invalid(
                "limits.max_group_members",
                "must be between 2 and 100000",
            ));
        }
        if !(1..=10_000).contains(&self.limits.max_pending_invitations) {
            return Err(ConfigError::invalid(
                "limits.max_pending_invitations",
                "must be between 1 and 10000",
            ));
        }
        if !(60..=365 * 24 * 3600).contains(&self.limits.invitation_ttl_secs) {
            return Err(ConfigError::invalid(
                "limits.invitation_ttl_secs",
                "must be between 60 and 31536000 (a year)",
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.limits.max_message_bytes) {
            return Err(ConfigError::invalid(
                "limits.max_message_bytes",
                "must be between 1024 and 16777216",
            ));
        }
        if !(64 * 1024..=MAX_CLIENT_FRAME_BYTES).contains(&self.limits.max_reply_bytes) {
            return Err(ConfigError::invalid(
                "limits.max_reply_bytes",
                "must be between 65536 and 16777216 (the largest frame the client library reads)",
            ));
        }
        if !(MIN_RESUME_CHATS..=100_000).contains(&self.limits.max_resume_chats) {
            return Err(ConfigError::invalid(
                "limits.max_resume_chats",
                "must be between 1000 (what the client library sends in one frame) and 100000",
            ));
        }
        self.websocket.validate()?;
        if self.limits.max_connections_per_ip == 0 {
            return Err(ConfigError::invalid(
                "limits.max_connections_per_ip",
                "must be at least 1",
            ));
        }
        for (key, value) in [
            ("header_timeout_secs", self.http.header_timeout_secs),
            ("body_timeout_secs", self.http.body_timeout_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    &format!("http.{key}"),
                    "must be at least 1",
                ));
            }
        }
        if self.log.command_log_max_bytes < 4096 {
            return Err(ConfigError::invalid(
                "log.command_log_max_bytes",
                "must be at least 4096",
            ));
        }
        for (class, rule) in self.limits.rate_limits.rules() {
            for (which, rate) in [("per_ip", rule.per_ip), ("per_account", rule.per_account)] {
                if rate.is_some_and(|r| r.burst == 0 || r.window_secs == 0) {
                    return Err(ConfigError::invalid(
                        &format!("limits.rate_limits.{class}.{which}"),
                        "burst and window_secs must be at least 1",
                    ));
                }
            }
            if let Some(f) = rule.failures {
                if f.per_account_ip == 0
                    || f.per_ip == 0
                    || f.backoff_secs == 0
                    || f.max_backoff_secs < f.backoff_secs
                {
                    return Err(ConfigError::invalid(
                        &format!("limits.rate_limits.{class}.failures"),
                        "counts and backoff_secs must be at least 1, \
                         max_backoff_secs at least backoff_secs",
                    ));
                }
            }
        }
        if self.limits.rate_limit_max_keys < 1000 {
            return Err(ConfigError::invalid(
                "limits.rate_limit_max_keys",
                "must be at least 1000",
            ));
        }
        let s = &self.security;
        for (key, value) in [
            ("session_ttl_hours", s.session_ttl_hours),
            ("verification_ttl_hours", s.verification_ttl_hours),
            ("max_code_attempts", s.max_code_attempts),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    &format!("security.{key}"),
                    "must be at least 1",
                ));
            }
        }
        check_argon2("security.auth_hash", s.auth_hash)?;
        check_argon2("security.min_client_kdf", s.min_client_kdf)?;
        let kdf = self.min_client_kdf();
        if !kdf.is_acceptable(&kdf) {
            return Err(ConfigError::invalid(
                "security.min_client_kdf",
                format!(
                    "above what clients accept (at most {} KiB, {} passes, {} lanes)",
                    KdfParams::MAX_M_COST_KIB,
                    KdfParams::MAX_T_COST,
                    KdfParams::MAX_P_COST
                ),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(ConfigError::invalid(
                "log.level",
                format!("not a log filter ({e})"),
            ));
        }
        self.tls_server_config()?;
        Ok(())
    }

    /// `path` as given if absolute, else below `data_dir`.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.data_dir.join(path)
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.resolve(&self.database.path)
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.resolve(&self.mail.outbox_dir)
    }

    /// `None` when the command-log file is disabled.
    pub fn command_log_path(&self) -> Option<PathBuf> {
        if self.log.command_log.as_os_str().is_empty() {
            None
        } else {
            Some(self.resolve(&self.log.command_log))
        }
    }

    pub fn server_secret_path(&self) -> PathBuf {
        self.data_dir.join("server_secret")
    }

    /// Number of HTTP workers, with 0 meaning one per core.
    pub fn workers(&self) -> usize {
        match self.server.workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        }
    }

    pub fn min_client_kdf(&self) -> KdfParams {
        if self.bench.enabled {
            // The smallest cost clients themselves accept.
            return ferrogram_core::crypto::kdf::MIN_PARAMS;
        }
        let c = self.security.min_client_kdf;
        KdfParams {
            m_cost_kib: c.m_cost_kib,
            t_cost: c.t_cost,
            p_cost: c.p_cost,
            ..KdfParams::DEFAULT
        }
    }

    /// The rate-limit rules in force: those of `limits.rate_limits`, or none
    /// at all in bench mode (a class without a rule is not limited).
    pub fn rate_rules(&self) -> HashMap<String, RateRule> {
        if self.bench.enabled {
            HashMap::new()
        } else {
            self.limits.rate_limits.rules()
        }
    }

    /// Argon2id cost of the server-side hash of auth keys (minimal in bench mode).
    pub fn auth_hash_cost(&self) -> Argon2Cost {
        if self.bench.enabled {
            BENCH_AUTH_HASH
        } else {
            self.security.auth_hash
        }
    }

    /// The rustls server configuration when `tls.cert` and `tls.key` are set,
    /// `None` when neither is. Errors name the file at fault.
    pub fn tls_server_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, ConfigError> {
        let (cert, key) = match (&self.tls.cert, &self.tls.key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (self.resolve(cert), self.resolve(key)),
            _ => {
                return Err(ConfigError::invalid(
                    "tls",
                    "give both cert and key (or neither)",
                ))
            }
        };
        let tls_err = |key: &'static str, path: &Path, message: String| ConfigError::Tls {
            key,
            path: path.to_owned(),
            message,
        };
        let cert_pem = std::fs::read(&cert)
            .map_err(|e| tls_err("cert", &cert, format!("cannot read: {e}")))?;
        let chain = rustls_pemfile::certs(&mut cert_pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls_err("cert", &cert, format!("invalid PEM: {e}")))?;
        if chain.is_empty() {
            return Err(tls_err(
                "cert",
                &cert,
                "no CERTIFICATE in the PEM file".to_owned(),
            ));
        }
        let key_pem =
            std::fs::read(&key).map_err(|e| tls_err("key", &key, format!("cannot read: {e}")))?;
        let private_key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .map_err(|e| tls_err("key", &key, format!("invalid PEM: {e}")))?
            .ok_or_else(|| tls_err("key", &key, "no PRIVATE KEY in the PEM file".to_owned()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("cert", &cert, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, private_key)
            .map_err(|e| tls_err("key", &key, format!("does not fit the certificate: {e}")))?;
        Ok(Some(Arc::new(server_config)))
    }
}

impl WebSocketConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("auth_timeout_secs", self.auth_timeout_secs),
            ("heartbeat_interval_secs", self.heartbeat_interval_secs),
            ("room_idle_secs", self.room_idle_secs),
            ("max_invalid_frames", u64::from(self.max_invalid_frames)),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    &format!("websocket.{key}"),
                    "must be at least 1",
                ));
            }
        }
        if self.client_timeout_secs <= self.heartbeat_interval_secs {
            return Err(ConfigError::invalid(
                "websocket.client_timeout_secs",
                "must be longer than websocket.heartbeat_interval_secs",
            ));
        }
        if self.outbound_queue < 4 {
            return Err(ConfigError::invalid(
                "websocket.outbound_queue",
                "must be at least 4",
            ));
        }
        if self.outbound_queue_bytes < 64 * 1024 {
            return Err(ConfigError::invalid(
                "websocket.outbound_queue_bytes",
                "must be at least 65536",
            ));
        }
        if self.max_frames_per_sec == 0 || self.frame_burst == 0 {
            return Err(ConfigError::invalid(
                if self.max_frames_per_sec == 0 {
                    "websocket.max_frames_per_sec"
                } else {
                    "websocket.frame_burst"
                },
                "must be at least 1",
            ));
        }
        if self.outbound_total_bytes < self.outbound_queue_bytes {
            return Err(ConfigError::invalid(
                "websocket.outbound_total_bytes",
                "must be at least websocket.outbound_queue_bytes",
            ));
        }
        Ok(())
    }
}

fn check_argon2(key: &str, cost: Argon2Cost) -> Result<(), ConfigError> {
    if cost.t_cost == 0 || cost.p_cost == 0 || cost.m_cost_kib < 8 * cost.p_cost {
        return Err(ConfigError::invalid(
            key,
            "t_cost and p_cost must be at least 1, m_cost_kib at least 8 * p_cost",
        ));
    }
    Ok(())
}

/// Where layered values came from, to name them in errors.
#[derive(Default)]
struct Layers {
    file: Option<(PathBuf, Value)>,
    /// (dotted key path, variable name)
    env: Vec<(String, String)>,
}

impl Layers {
    fn origin(&self, key: &str) -> String {
        if let Some((_, var)) = self.env.iter().rev().find(|(path, _)| path == key) {
            return format!(" (from {var})");
        }
        if let Some((path, tree)) = &self.file {
            if lookup(tree, key).is_some() {
                return format!(" (in {})", path.display());
            }
        }
        String::new()
    }
}

fn parse_yaml(text: &str, path: &Path) -> Result<Value, ConfigError> {
    serde_norway::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn deserialize(tree: Value, layers: &Layers) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(tree).map_err(
        |e: serde_path_to_error::Error<serde_norway::Error>| {
            // The path includes an unknown field's own name.
            let key = e.path().to_string();
            let message = e.inner().to_string();
            let origin = layers.origin(&key);
            ConfigError::Invalid {
                key,
                message,
                origin,
            }
        },
    )
}

/// Lays `over` onto `base`: mappings merge key by key, anything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// Sets the value at a key path, creating (or replacing non-mapping) parents.
fn set_path(tree: &mut Value, segments: &[String], value: Value) {
    let Some((first, rest)) = segments.split_first() else {
        *tree = value;
        return;
    };
    if !tree.is_mapping() {
        *tree = Value::Mapping(Mapping::new());
    }
    if let Value::Mapping(map) = tree {
        let key = Value::String(first.clone());
        if !map.contains_key(&key) {
            map.insert(key.clone(), Value::Null);
        }
        if let Some(slot) = map.get_mut(&key) {
            set_path(slot, rest, value);
        }
    }
}

fn lookup<'a>(tree: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .try_fold(tree, |node, segment| node.as_mapping()?.get(segment))
}

/// An environment value read as a YAML scalar; anything that is not a scalar
/// (or not YAML) stays a string, and the empty string stays empty.
fn env_scalar(raw: &str) -> Value {
    if raw.trim().is_empty() {
        return Value::String(raw.to_owned());
    }
    match serde_norway::from_str::<Value>(raw) {
        Ok(v @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_))) => v,
        _ => Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn err(extra: Option<&Path>, vars: &[(&str, &str)]) -> String {
        Config::load_from(extra, &env(vars))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn embedded_defaults_match_the_documented_values() {
        let c = Config::embedded_defaults();
        c.validate().unwrap();
        assert_eq!(c.server.host, "127.0.0.1");
        assert_eq!(c.server.port, 8080);
        assert_eq!(c.server.public_url, "");
        assert_eq!(c.server.workers, 0);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.database_path(), PathBuf::from("./data/ferrogram.db"));
        assert_eq!(c.database.pool_size, 8);
        assert_eq!(c.database.commit_delay_us, 0);
        assert_eq!(c.mail.transport, MailTransport::Outbox);
        assert_eq!(c.outbox_dir(), PathBuf::from("./data/outbox"));
        assert_eq!(c.mail.max_retries, 5);
        assert_eq!(c.mail.smtp.security, SmtpSecurity::Starttls);
        assert!(c.tls.cert.is_none() && c.tls.key.is_none());
        assert_eq!(c.limits.max_body_bytes, 1_048_576);
        assert_eq!(c.limits.max_group_members, 1000);
        assert_eq!(c.limits.max_pending_invitations, 100);
        assert_eq!(c.limits.invitation_ttl_secs, 30 * 24 * 3600);
        assert_eq!(c.limits.max_message_bytes, 65_536);
        assert_eq!(c.limits.rate_limits.rules().len(), 20);
        assert_eq!(c.limits.rate_limit_max_keys, 200_000);
        assert!(c.security.registration_open);
        assert_eq!(c.min_client_kdf(), KdfParams::DEFAULT);
        assert_eq!(
            c.command_log_path(),
            Some(PathBuf::from("./data/commands.log"))
        );
        assert!(c.workers() >= 1);
    }

    /// A new command without a rate class, or with a class that
    /// config.yaml does not configure, fails here.
    #[test]
    fn every_command_has_a_configured_rate_class() {
        let mut registry = ferrogram_core::command::Registry::new();
        ferrogram_handlers::register_all(&mut registry);
        let rules = Config::embedded_defaults().limits.rate_limits.rules();
        let mut used = std::collections::HashSet::new();
        for name in registry.names() {
            let class = registry
                .rate_class(name)
                .unwrap_or_else(|| panic!("{name} has no rate class"));
            assert!(
                rules.contains_key(class),
                "{name}: class {class} is not in config.yaml"
            );
            used.insert(class);
        }
        for class in rules.keys() {
            assert!(used.contains(class.as_str()), "class {class} is unused");
        }
    }

    #[test]
    fn hostile_client_limits_have_their_defaults_and_are_checked() {
        let c = Config::embedded_defaults();
        assert_eq!(c.http.header_timeout_secs, 10);
        assert_eq!(c.http.body_timeout_secs, 30);
        assert_eq!(c.http.min_body_rate_bytes_per_sec, 1024);
        assert_eq!(c.http.min_body_rate_grace_secs, 5);
        assert_eq!(c.limits.max_connections_per_ip, 512);
        assert_eq!(c.limits.account_storage_bytes, 1 << 30);
        assert_eq!(c.log.command_log_max_bytes, 64 << 20);
        assert_eq!(c.log.command_log_keep, 7);
        for (var, key) in [
            (
                "FERROGRAM__LIMITS__MAX_CONNECTIONS_PER_IP",
                "limits.max_connections_per_ip",
            ),
            (
                "FERROGRAM__HTTP__HEADER_TIMEOUT_SECS",
                "http.header_timeout_secs",
            ),
            (
                "FERROGRAM__HTTP__BODY_TIMEOUT_SECS",
                "http.body_timeout_secs",
            ),
            (
                "FERROGRAM__LOG__COMMAND_LOG_MAX_BYTES",
                "log.command_log_max_bytes",
            ),
        ] {
            let message = err(None, &[(var, "0")]);
            assert!(message.contains(key), "{message}");
        }
    }

    #[test]
    fn every_key_of_config_yaml_is_documented() {
        // A leaf key is documented by the comment right above it, or shares the
        // comment of the documented sibling or parent right above it (a group
        // such as `auth_hash` or `per_ip`/`per_account`).
        let lines: Vec<&str> = EMBEDDED_CONFIG.lines().collect();
        let indent = |s: &str| s.len() - s.trim_start().len();
        let is_key = |s: &str| {
            let t = s.trim_start();
            !t.is_empty() && !t.starts_with('#') && t.contains(':')
        };
        let mut documented = vec![false; lines.len()];
        for (i, line) in lines.iter().enumerate() {
            if !is_key(line) {
                continue;
            }
            documented[i] = i > 0 && {
                let prev = lines[i - 1];
                prev.trim_start().starts_with('#')
                    || (is_key(prev) && documented[i - 1] && indent(prev) <= indent(line))
            };
            let leaf = !line.trim_end().ends_with(':');
            assert!(
                !leaf || documented[i],
                "config.yaml line {} has no comment: {line}",
                i + 1
            );
        }
    }

    #[test]
    fn bench_mode_is_off_by_default_and_lowers_costs_only_when_on() {
        let c = Config::embedded_defaults();
        assert!(!c.bench.enabled);
        assert_eq!(c.min_client_kdf(), KdfParams::DEFAULT);
        assert_eq!(c.auth_hash_cost(), c.security.auth_hash);
        assert_eq!(c.rate_rules().len(), 20);
        let c = Config::load_from(None, &env(&[("FERROGRAM__BENCH__ENABLED", "true")])).unwrap();
        assert!(c.bench.enabled);
        assert_eq!(c.min_client_kdf(), ferrogram_core::crypto::kdf::MIN_PARAMS);
        assert_eq!(c.auth_hash_cost(), BENCH_AUTH_HASH);
        assert!(c.rate_rules().is_empty());
    }

    #[test]
    fn file_layer_overrides_defaults_section_by_section() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "local.yaml",
            "server:\n  port: 9123\nmail:\n  smtp:\n    host: smtp.example.org\n",
        );
        let c = Config::load_from(Some(&file), &[]).unwrap();
        assert_eq!(c.server.port, 9123);
        assert_eq!(c.server.host, "127.0.0.1", "siblings keep their defaults");
        assert_eq!(c.mail.smtp.host, "smtp.example.org");
        assert_eq!(c.mail.smtp.port, 587);
    }

    #[test]
    fn env_overrides_file_and_values_are_yaml_scalars() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "local.yaml", "server:\n  port: 9123\n");
        let c = Config::load_from(
            Some(&file),
            &env(&[
                ("FERROGRAM__SERVER__PORT", "9000"),
                ("FERROGRAM__SECURITY__REGISTRATION_OPEN", "false"),
                ("FERROGRAM__MAIL__SMTP__PASSWORD", "s3cr3t: with colon"),
                ("FERROGRAM__MAIL__SMTP__USERNAME", ""),
                ("FERROGRAM__LIMITS__RATE_LIMITS__LOGIN__PER_IP__BURST", "3"),
                ("FERROGRAM__SERVER__PUBLIC_URL", "https://chat.example.org"),
                ("OTHER__SERVER__PORT", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.port, 9000);
        assert!(!c.security.registration_open);
        assert_eq!(c.mail.smtp.password.expose_secret(), "s3cr3t: with colon");
        assert_eq!(c.mail.smtp.username, "");
        assert_eq!(c.limits.rate_limits.login.per_ip.unwrap().burst, 3);
        assert_eq!(c.server.public_url, "https://chat.example.org");
        // the password never shows in Debug output
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_and_its_origin() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "local.yaml", "server:\n  prot: 1\n");
        let msg = err(Some(&file), &[]);
        assert!(
            msg.starts_with("config: server.prot: unknown field `prot`"),
            "{msg}"
        );
        assert!(msg.contains("local.yaml"), "{msg}");

        let msg = err(None, &[("FERROGRAM__SERVR__PORT", "1")]);
        assert!(
            msg.starts_with("config: servr: unknown field `servr`"),
            "{msg}"
        );

        let msg = err(None, &[("FERROGRAM__LOG__COLOUR", "red")]);
        assert!(
            msg.starts_with("config: log.colour: unknown field"),
            "{msg}"
        );
        assert!(msg.contains("FERROGRAM__LOG__COLOUR"), "{msg}");
    }

    #[test]
    fn bad_types_are_errors_naming_the_key() {
        let msg = err(None, &[("FERROGRAM__SERVER__PORT", "eighty")]);
        assert!(
            msg.starts_with("config: server.port: invalid type"),
            "{msg}"
        );
        assert!(msg.contains("(from FERROGRAM__SERVER__PORT)"), "{msg}");

        let msg = err(None, &[("FERROGRAM__SERVER__PORT", "70000")]);
        assert!(
            msg.starts_with("config: server.port: invalid value"),
            "{msg}"
        );

        let msg = err(None, &[("FERROGRAM__MAIL__TRANSPORT", "pigeon")]);
        assert!(
            msg.starts_with("config: mail.transport: unknown variant `pigeon`"),
            "{msg}"
        );

        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "bad.yaml",
            "limits:\n  max_body_bytes: [1, 2]\n",
        );
        let msg = err(Some(&file), &[]);
        assert!(
            msg.starts_with("config: limits.max_body_bytes: invalid type"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn unreadable_or_malformed_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let msg = err(Some(&missing), &[]);
        assert!(
            msg.starts_with("config file ") && msg.contains("nope.yaml"),
            "{msg}"
        );

        let file = write(dir.path(), "broken.yaml", "server: [unclosed\n");
        let msg = err(Some(&file), &[]);
        assert!(msg.contains("broken.yaml"), "{msg}");

        let file = write(dir.path(), "list.yaml", "- 1\n- 2\n");
        let msg = err(Some(&file), &[]);
        assert!(msg.contains("expected a mapping"), "{msg}");

        let file = write(dir.path(), "empty.yaml", "");
        assert!(Config::load_from(Some(&file), &[]).is_ok());
    }

    #[test]
    fn an_smtp_ca_file_needs_tls() {
        let smtp = [
            ("FERROGRAM__MAIL__TRANSPORT", "smtp"),
            ("FERROGRAM__MAIL__SMTP__CA_FILE", "smtp-ca.pem"),
        ];
        let msg = err(
            None,
            &[
                smtp[0],
                smtp[1],
                ("FERROGRAM__MAIL__SMTP__SECURITY", "none"),
            ],
        );
        assert!(msg.starts_with("config: mail.smtp.ca_file:"), "{msg}");
        let c = Config::load_from(None, &env(&smtp)).unwrap();
        assert_eq!(c.mail.smtp.ca_file, Some(PathBuf::from("smtp-ca.pem")));
        assert_eq!(Config::embedded_defaults().mail.smtp.ca_file, None);
    }

    #[test]
    fn semantic_checks_name_the_key() {
        let msg = err(None, &[("FERROGRAM__MAIL__FROM", "not an address")]);
        assert!(msg.starts_with("config: mail.from:"), "{msg}");
        let msg = err(
            None,
            &[("FERROGRAM__SERVER__PUBLIC_URL", "chat.example.org")],
        );
        assert!(msg.starts_with("config: server.public_url:"), "{msg}");
        let msg = err(
            None,
            &[(
                "FERROGRAM__LIMITS__RATE_LIMITS__REGISTER__PER_ACCOUNT__BURST",
                "0",
            )],
        );
        assert!(
            msg.starts_with("config: limits.rate_limits.register.per_account:"),
            "{msg}"
        );
        let msg = err(None, &[("FERROGRAM__LOG__LEVEL", "info,=[")]);
        assert!(msg.starts_with("config: log.level:"), "{msg}");
        let msg = err(
            None,
            &[("FERROGRAM__SECURITY__MIN_CLIENT_KDF__T_COST", "1000")],
        );
        assert!(msg.starts_with("config: security.min_client_kdf:"), "{msg}");
        let msg = err(None, &[("FERROGRAM__DATABASE__COMMIT_DELAY_US", "50001")]);
        assert!(
            msg.starts_with("config: database.commit_delay_us:"),
            "{msg}"
        );
        let c = Config::load_from(
            None,
            &env(&[("FERROGRAM__DATABASE__COMMIT_DELAY_US", "2000")]),
        )
        .unwrap();
        assert_eq!(c.database.commit_delay_us, 2000);
    }

    #[test]
    fn tls_files_are_checked_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let msg = err(
            None,
            &[
                ("FERROGRAM__DATA_DIR", data),
                ("FERROGRAM__TLS__CERT", "cert.pem"),
            ],
        );
        assert!(msg.starts_with("config: tls: give both"), "{msg}");

        let msg = err(
            None,
            &[
                ("FERROGRAM__DATA_DIR", data),
                ("FERROGRAM__TLS__CERT", "missing.pem"),
                ("FERROGRAM__TLS__KEY", "key.pem"),
            ],
        );
        assert!(msg.starts_with("config: tls.cert: "), "{msg}");
        assert!(
            msg.contains("missing.pem") && msg.contains("cannot read"),
            "{msg}"
        );

        write(dir.path(), "garbage.pem", "this is not PEM\n");
        let msg = err(
            None,
            &[
                ("FERROGRAM__DATA_DIR", data),
                ("FERROGRAM__TLS__CERT", "garbage.pem"),
                ("FERROGRAM__TLS__KEY", "garbage.pem"),
            ],
        );
        assert!(
            msg.starts_with("config: tls.cert: ") && msg.contains("garbage.pem"),
            "{msg}"
        );

        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        write(dir.path(), "cert.pem", &cert.cert.pem());
        write(dir.path(), "key.pem", &cert.signing_key.serialize_pem());
        let msg = err(
            None,
            &[
                ("FERROGRAM__DATA_DIR", data),
                ("FERROGRAM__TLS__CERT", "cert.pem"),
                ("FERROGRAM__TLS__KEY", "cert.pem"),
            ],
        );
        assert!(
            msg.starts_with("config: tls.key: ") && msg.contains("no PRIVATE KEY"),
            "{msg}"
        );
        let c = Config::load_from(
            None,
            &env(&[
                ("FERROGRAM__DATA_DIR", data),
                ("FERROGRAM__TLS__CERT", "cert.pem"),
                ("FERROGRAM__TLS__KEY", "key.pem"),
            ]),
        )
        .unwrap();
        assert!(c.tls_server_config().unwrap().is_some());
    }

    #[test]
    fn websocket_settings_are_documented_defaults_and_checked() {
        let c = Config::embedded_defaults();
        assert_eq!(c.limits.max_frame_bytes, 1_048_576);
        assert_eq!(c.websocket.auth_timeout_secs, 10);
        assert_eq!(c.websocket.heartbeat_interval_secs, 15);
        assert_eq!(c.websocket.client_timeout_secs, 45);
        assert_eq!(c.websocket.outbound_queue, 256);
        assert_eq!(c.websocket.max_invalid_frames, 50);
        assert_eq!(c.websocket.room_idle_secs, 60);
        let msg = err(None, &[("FERROGRAM__WEBSOCKET__CLIENT_TIMEOUT_SECS", "15")]);
        assert!(msg.contains("websocket.client_timeout_secs"), "{msg}");
        let msg = err(None, &[("FERROGRAM__WEBSOCKET__OUTBOUND_QUEUE", "1")]);
        assert!(msg.contains("websocket.outbound_queue"), "{msg}");
        let msg = err(None, &[("FERROGRAM__WEBSOCKET__AUTH_TIMEOUT_SECS", "0")]);
        assert!(msg.contains("websocket.auth_timeout_secs"), "{msg}");
    }

    #[test]
    fn socket_caps_and_byte_budgets_are_documented_defaults_and_checked() {
        let c = Config::embedded_defaults();
        assert_eq!(c.limits.max_sockets_per_session, 16);
        assert_eq!(c.limits.max_sockets_per_user, 64);
        assert_eq!(c.limits.max_sockets_per_ip, 256);
        assert_eq!(c.limits.max_reply_bytes, 4 * 1024 * 1024);
        assert_eq!(c.websocket.outbound_queue_bytes, 8 * 1024 * 1024);
        assert_eq!(c.websocket.outbound_total_bytes, 512 * 1024 * 1024);
        let msg = err(
            None,
            &[("FERROGRAM__WEBSOCKET__OUTBOUND_QUEUE_BYTES", "1000")],
        );
        assert!(msg.contains("websocket.outbound_queue_bytes"), "{msg}");
        let msg = err(
            None,
            &[("FERROGRAM__WEBSOCKET__OUTBOUND_TOTAL_BYTES", "1048576")],
        );
        assert!(msg.contains("websocket.outbound_total_bytes"), "{msg}");
    }

    #[test]
    fn reply_and_resume_limits_are_documented_defaults_and_checked() {
        let c = Config::embedded_defaults();
        assert_eq!(c.limits.max_reply_bytes, 4_194_304);
        assert_eq!(c.limits.max_resume_chats, 1000);
        for (key, value, name) in [
            ("MAX_REPLY_BYTES", "65535", "limits.max_reply_bytes"),
            ("MAX_REPLY_BYTES", "16777217", "limits.max_reply_bytes"),
            ("MAX_RESUME_CHATS", "999", "limits.max_resume_chats"),
            ("MAX_RESUME_CHATS", "100001", "limits.max_resume_chats"),
        ] {
            let var = format!("FERROGRAM__LIMITS__{key}");
            let msg = err(None, &[(var.as_str(), value)]);
            assert!(msg.contains(name), "{key}={value}: {msg}");
        }
    }

    #[test]
    fn env_names_must_have_segments() {
        let msg = err(None, &[("FERROGRAM__SERVER____PORT", "1")]);
        assert!(msg.contains("FERROGRAM__SERVER____PORT"), "{msg}");
    }
}
