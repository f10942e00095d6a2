//! Wiring: from a [`Config`] to a running server. [`Application::build`] opens
//! everything and binds the listening socket itself (so port 0 works and the
//! real port can be read back); [`spawn_background`] runs a whole server on a
//! thread of its own for tests.

use crate::command_log::CommandLog;
use crate::config::Config;
use crate::gateway::hub::Hub;
use crate::gateway::notifier::HubHandle;
use crate::gateway::presence::PresenceBoard;
use crate::gateway::settings::{Gateway, WsSettings};
use crate::gateway::transport::budget::OutboundBudget;
use crate::http;
use crate::mailer::{Mailer, MailerHandle, Transport};
use actix::Actor;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use ferrogram_core::command::Registry;
use ferrogram_core::ratelimit::RateLimiter;
use ferrogram_handlers::notify::commit_listener;
use ferrogram_handlers::rules::ChatPolicy;
use ferrogram_handlers::{HandlerCtx, HashCost, Notifier, Settings};
use ferrogram_storage::invitations::InvitationLimits;
use ferrogram_storage::writer::WriterConfig;
use ferrogram_storage::{EventWriter, Storage};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Length of the server secret in bytes.
pub const SERVER_SECRET_LEN: usize = 32;

/// How long shutdown waits for queued mail and command-log lines.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// A built server, bound and ready to run.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    base_url: String,
    tls: bool,
    database_path: PathBuf,
    mail_transport: String,
    mailer: MailerHandle,
    command_log: Arc<CommandLog>,
    notifier: HubHandle,
    outbound: Arc<OutboundBudget>,
    config: Config,
}

impl Application {
    /// Creates the data folder and server secret, opens (and migrates) the
    /// database, starts the mailer and the command log, and binds the socket.
    ///
    /// Must be called inside an actix `System` (e.g. under `#[actix_web::main]`
    /// or `actix_web::rt::System::new().block_on`), where the mailer actor runs.
    pub fn build(config: Config) -> anyhow::Result<Application> {
        let tls_config = config.tls_server_config()?;
        make_created_files_private();
        create_private_dir(&config.data_dir)
            .with_context(|| format!("cannot create data folder {}", config.data_dir.display()))?;
        warn_if_readable_by_others(&config.data_dir);
        let server_secret = load_or_create_secret(&config.server_secret_path())?;

        let database_path = config.database_path();
        let storage = Storage::open(&database_path, config.database.pool_size)
            .with_context(|| format!("cannot open database {}", database_path.display()))?;

        let command_log_path = config.command_log_path();
        let rotation = crate::command_log::Rotation {
            max_bytes: config.log.command_log_max_bytes,
            keep: config.log.command_log_keep,
        };
        let command_log = Arc::new(
            CommandLog::open_rotating(command_log_path.as_deref(), rotation).with_context(
                || {
                    format!(
                        "cannot open command log {}",
                        command_log_path
                            .as_deref()
                            .unwrap_or(Path::new(""))
                            .display()
                    )
                },
            )?,
        );

        let mailer = MailerHandle::new(Mailer::from_config(&config)?.start());

        let listener = TcpListener::bind((config.server.host.as_str(), config.server.port))
            .with_context(|| {
                format!(
                    "cannot listen on {}:{}",
                    config.server.host, config.server.port
                )
            })?;
        let addr = listener.local_addr()?;
        let scheme = if tls_config.is_some() {
            "https"
        } else {
            "http"
        };
        let base_url = if config.server.public_url.is_empty() {
            format!("{scheme}://{}", url_authority(addr))
        } else {
            config.server.public_url.trim_end_matches('/').to_owned()
        };

        let settings = settings_from(&config, &base_url, server_secret);
        warn_if_limits_refuse_sends(&config, &settings);
        if config.bench.enabled {
            tracing::warn!("{BENCH_WARNING}");
        }
        let ws_settings = WsSettings::from_config(&config);
        let presence = Arc::new(PresenceBoard::default());
        let hub = Hub::new(
            Some(storage.clone()),
            presence.clone(),
            ws_settings.room_idle,
        )
        .start();
        let notifier = HubHandle::new(hub.clone(), presence);
        let shared_notifier: Arc<dyn Notifier> = Arc::new(notifier.clone());
        // Committed chat events reach the gateway from the writer's thread,
        // in commit order.
        // The chat rules (who may do what, group size, quota) run inside
        // the writer's transactions.
        let writer = EventWriter::start(
            &storage,
            WriterConfig {
                commit_delay: Duration::from_micros(config.database.commit_delay_us),
                ..WriterConfig::default()
            },
            Arc::new(ChatPolicy::from_settings(&settings)),
            Some(commit_listener(shared_notifier.clone())),
        )
        .context("cannot start the event writer")?;
        let gateway = web::Data::new(Gateway::new(hub, ws_settings));
        let outbound = gateway.budget.clone();
        let ctx = web::Data::new(HandlerCtx {
            storage,
            mail: Arc::new(mailer.clone()),
            settings,
            rate_limiter: RateLimiter::with_max_keys(
                config.rate_rules(),
                config.limits.rate_limit_max_keys,
            ),
            command_log: command_log.clone(),
            notifier: shared_notifier,
            writer: Arc::new(writer),
        });
        let mut registry = Registry::new();
        ferrogram_handlers::register_all(&mut registry);
        let registry = web::Data::new(registry);

        let body_limits = web::Data::new(http::BodyLimits::from_config(&config.http));
        let connections = http::conn_limit::ConnLimiter::new(config.limits.max_connections_per_ip);
        let http_server = HttpServer::new(move || {
            App::new()
                .app_data(ctx.clone())
                .app_data(registry.clone())
                .app_data(gateway.clone())
                .app_data(body_limits.clone())
                .configure(http::configure)
        })
        .on_connect(move |conn, data| {
            // Over the per-IP cap: the connection is already shut down.
            if connections.admit(conn, data) {
                // Keeps a handle on each connection's socket, so the WebSocket
                // gateway can cut off a peer that stopped reading.
                crate::gateway::transport::socket::on_connect(conn, data);
            }
        })
        // A connection must deliver each request head in time (actix counts
        // it from the connection's start, and after a kept-alive response).
        .client_request_timeout(Duration::from_secs(config.http.header_timeout_secs))
        .workers(config.workers())
        .shutdown_timeout(10)
        // Signals are installed by `handle_signals`, before the startup
        // message, so a signal right after it is never missed.
        .disable_signals();
        let http_server = match tls_config {
            Some(tls) => http_server.listen_rustls_0_23(listener, Arc::unwrap_or_clone(tls))?,
            None => http_server.listen(listener)?,
        };
        Ok(Application {
            server: http_server.run(),
            addr,
            base_url,
            tls: scheme == "https",
            database_path,
            mail_transport: Transport::describe(&config),
            mailer,
            command_log,
            notifier,
            outbound,
            config,
        })
    }

    /// The configuration the server was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port actually bound (the chosen one when configured as 0).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The public base URL (configured, or derived from the bound address).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A handle that stops the server.
    /// The WebSocket gateway's outbound byte accounting (what its budgets
    /// decide on); tests read its peaks.
    pub fn outbound(&self) -> Arc<OutboundBudget> {
        self.outbound.clone()
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Stops the server gracefully on SIGINT or SIGTERM. The handlers are
    /// installed before this returns. Call it inside the actix `System`.
    pub fn handle_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let handle = self.server.handle();
        let notifier = self.notifier.clone();
        actix_web::rt::spawn(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            tracing::info!("{name} received; shutting down gracefully");
            // WebSocket connections never end on their own: close them (1001,
            // "server shutting down") so the graceful stop does not wait for them.
            notifier.close_all();
            handle.stop(true).await;
        });
        Ok(())
    }

    /// The startup message: name, version, address, database, mail transport.
    pub fn startup_message(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let mut message = format!(
            "Ferrogram server {version} (protocol {protocol})\n\
             \x20 listening on  {scheme}://{addr}\n\
             \x20 public URL    {url}\n\
             \x20 database      {db}\n\
             \x20 mail          {mail}",
            version = env!("CARGO_PKG_VERSION"),
            protocol = ferrogram_core::PROTOCOL_VERSION,
            addr = url_authority(self.addr),
            url = self.base_url,
            db = self.database_path.display(),
            mail = self.mail_transport,
        );
        if self.config.bench.enabled {
            message.push_str("\n\n  !!! WARNING: ");
            message.push_str(BENCH_WARNING);
            message.push_str(" !!!");
        }
        message
    }

    /// Serves until stopped (SIGINT, SIGTERM or a [`ServerHandle`]), then
    /// waits for queued mail and command-log lines.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        tracing::info!("server stopped; flushing mail and command log");
        if !self.mailer.flush(FLUSH_TIMEOUT).await {
            tracing::warn!("some mail was still unsent at shutdown");
        }
        let log = self.command_log.clone();
        let flushed = tokio::task::spawn_blocking(move || log.flush(FLUSH_TIMEOUT))
            .await
            .unwrap_or(false);
        if !flushed {
            tracing::warn!("the command log could not be flushed at shutdown");
        }
        tracing::info!("shutdown complete");
        result
    }
}

/// `host:port` for URLs, with IPv6 in brackets and "any address" shown as
/// the loopback one (a URL to 0.0.0.0 is not reachable).
fn url_authority(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port()).to_string()
}

/// What the handlers need to know of the configuration.
pub fn settings_from(config: &Config, public_url: &str, server_secret: Arc<[u8]>) -> Settings {
    let s = &config.security;
    let hash = config.auth_hash_cost();
    let server_name = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest)
        .trim_end_matches('/')
        .to_owned();
    Settings {
        server_name,
        public_url: public_url.trim_end_matches('/').to_owned(),
        registration_open: s.registration_open,
        session_ttl_secs: i64::from(s.session_ttl_hours) * 3600,
        verification_ttl_secs: i64::from(s.verification_ttl_hours) * 3600,
        resend_cooldown_secs: i64::from(s.resend_cooldown_secs),
        max_code_attempts: s.max_code_attempts,
        auth_hash: HashCost {
            m_cost_kib: hash.m_cost_kib,
            t_cost: hash.t_cost,
            p_cost: hash.p_cost,
        },
        min_kdf: config.min_client_kdf(),
        max_request_bytes: config.limits.max_body_bytes,
        server_secret,
        max_group_members: config.limits.max_group_members,
        max_envelope_body_bytes: config.limits.max_message_bytes,
        max_reply_bytes: config.limits.max_reply_bytes,
        account_storage_bytes: config.limits.account_storage_bytes,
        invitations: InvitationLimits {
            max_pending: config.limits.max_pending_invitations,
            // Validated: at most a year, far from overflowing.
            ttl_ms: i64::try_from(config.limits.invitation_ttl_secs)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
        },
        bench_accounts: config.bench.enabled,
    }
}

/// Said at start-up (log and startup message) while `bench.enabled` is on.
pub const BENCH_WARNING: &str = "BENCH MODE IS ON (bench.enabled): cheap password hashing, \
     accounts verified without email, no rate limits. For load tests only; \
     never use this server for real users.";

/// Framing around a request body in a WebSocket `command` frame (type, id,
/// command name), generously.
const COMMAND_FRAME_OVERHEAD: usize = 1024;

/// The largest `message.send` the group and envelope limits allow must fit
/// both a REST body and a WebSocket frame, or sending to large groups fails
/// with payload_too_large / frame_too_large. Said once, at start-up.
fn warn_if_limits_refuse_sends(config: &Config, settings: &Settings) {
    let largest_send = ferrogram_handlers::message::max_send_request_bytes(settings);
    let limits = &config.limits;
    if limits.max_body_bytes < largest_send
        || limits.max_frame_bytes < largest_send + COMMAND_FRAME_OVERHEAD
    {
        tracing::warn!(
            largest_send,
            max_body_bytes = limits.max_body_bytes,
            max_frame_bytes = limits.max_frame_bytes,
            "limits.max_body_bytes or limits.max_frame_bytes is below the largest message \
             the group and envelope limits allow: messages to large groups will be refused"
        );
    }
}

/// Sets the process umask to 0o077, so every file and folder the server
/// creates (the database and its `-wal` and `-shm` files included, which
/// SQLite opens itself) is readable by its owner only, whatever the umask it
/// was started with.
fn make_created_files_private() {
    use rustix::fs::Mode;
    rustix::process::umask(Mode::from_raw_mode(0o077));
}

/// What is said at start-up when `data_dir` may be read by other users.
pub const DATA_DIR_WARNING: &str =
    "the data folder is readable by other users; chmod 700 it (it holds the database and the server secret)";

/// Warns when `dir` grants any access to group or others: the files in it are
/// created private, but names and sizes (and files made by others) show.
fn warn_if_readable_by_others(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(dir) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %dir.display(), mode = %format!("{mode:o}"), "{DATA_DIR_WARNING}");
        }
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Reads the server secret, or creates it (32 random bytes, mode 0600) on
/// first start. Creation goes through a temporary file and a hard link, so a
/// crash never leaves a short secret and two starts never race.
pub fn load_or_create_secret(path: &Path) -> anyhow::Result<Arc<[u8]>> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::read(path) {
        Ok(bytes) => {
            if bytes.len() != SERVER_SECRET_LEN {
                anyhow::bail!(
                    "server secret {} has {} bytes, expected {SERVER_SECRET_LEN}; \
                     restore it from a backup (a new one would change every pre-login salt)",
                    path.display(),
                    bytes.len()
                );
            }
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "server secret is readable by other users; chmod 600 it"
                );
            }
            return Ok(bytes.into());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read server secret {}", path.display()))
        }
    }
    let mut secret = [0u8; SERVER_SECRET_LEN];
    rand::fill(&mut secret);
    let mut suffix = [0u8; 6];
    rand::fill(&mut suffix);
    let tmp = path.with_extension(format!("tmp-{}", hex::encode(suffix)));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&secret)?;
        file.sync_all()?;
        std::fs::hard_link(&tmp, path)
    };
    let result = write();
    let _ = std::fs::remove_file(&tmp);
    match result {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a new server secret");
            Ok(secret.to_vec().into())
        }
        // Another process won the race: use its secret.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_secret(path),
        Err(e) => Err(e).with_context(|| format!("cannot create server secret {}", path.display())),
    }
}

/// A whole server running on its own thread with its own actix `System`, for
/// tests (works under a plain `#[tokio::test]`). Dropping it stops the server
/// and joins the thread.
pub struct BackgroundServer {
    /// The address bound (on the configured host, with the real port).
    pub addr: SocketAddr,
    /// `http(s)://host:port`, or the configured public URL.
    pub base_url: String,
    pub data_dir: PathBuf,
    /// The WebSocket gateway's outbound byte accounting.
    pub outbound: Arc<OutboundBudget>,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    /// Stops the server (flushing mail and the command log) and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            // The command is sent at once; the returned future only waits.
            drop(self.handle.stop(false));
            let _ = thread.join();
        }
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Builds and runs a server from `config` on a new thread; returns once it
/// listens (or with the error that kept it from starting).
pub fn spawn_background(config: Config) -> anyhow::Result<BackgroundServer> {
    let data_dir = config.data_dir.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("ferrogram-server".to_owned())
        .spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                match Application::build(config) {
                    Ok(app) => {
                        let ready = (
                            app.addr(),
                            app.base_url().to_owned(),
                            app.handle(),
                            app.outbound(),
                        );
                        if ready_tx.send(Ok(ready)).is_ok() {
                            if let Err(e) = app.run_until_stopped().await {
                                tracing::error!(error = %e, "background server failed");
                            }
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        })?;
    match ready_rx.recv() {
        Ok(Ok((addr, base_url, handle, outbound))) => Ok(BackgroundServer {
            addr,
            base_url,
            data_dir,
            outbound,
            handle,
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            anyhow::bail!("the server thread ended before it listened")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_config(data_dir: &Path) -> Config {
        let mut config = Config::embedded_defaults();
        config.server.port = 0;
        config.server.workers = 1;
        config.data_dir = data_dir.to_owned();
        config
    }

    #[tokio::test]
    async fn background_server_serves_on_port_0_and_stops_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let server = spawn_background(test_config(dir.path())).unwrap();
        assert_ne!(server.addr.port(), 0);
        assert_eq!(server.base_url, format!("http://{}", server.addr));
        assert_eq!(server.data_dir, dir.path());
        let url = format!("{}/api/v1/openapi.json", server.base_url);
        let res = reqwest::get(&url).await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers().contains_key(http::REQUEST_ID_HEADER));
        let doc: serde_json::Value = res.json().await.unwrap();
        assert_eq!(doc["info"]["title"], "Ferrogram API");
        let info: serde_json::Value = reqwest::get(format!("{}/api/v1/server", server.base_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info["name"], "ferrogram", "{info}");
        let addr = server.addr;
        drop(server);
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "the port is closed after drop"
        );
        // one JSON line per command reached the command log
        let log = std::fs::read_to_string(dir.path().join("commands.log")).unwrap();
        let entry: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
        assert_eq!(entry["command"], "server.info");
        assert_eq!(entry["outcome"], "ok");
    }

    #[tokio::test]
    async fn background_server_serves_https_with_the_configured_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
        let mut config = test_config(dir.path());
        config.tls.cert = Some("cert.pem".into());
        config.tls.key = Some("key.pem".into());
        config.server.public_url = "https://localhost/".to_owned();
        let server = spawn_background(config).unwrap();
        assert_eq!(server.base_url, "https://localhost");
        let client = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap(),
            )
            .resolve("localhost", server.addr)
            .build()
            .unwrap();
        let res = client
            .get(format!(
                "https://localhost:{}/api/v1/openapi.json",
                server.addr.port()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        // plain HTTP on the TLS port does not get an answer
        let plain = reqwest::get(format!("http://{}/api/v1/openapi.json", server.addr)).await;
        assert!(plain.is_err() || !plain.unwrap().status().is_success());
    }

    #[tokio::test]
    async fn build_errors_are_reported_not_panicked() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-folder");
        std::fs::write(&blocker, b"").unwrap();
        let err = spawn_background(test_config(&blocker)).err().unwrap();
        assert!(format!("{err:#}").contains("not-a-folder"), "{err:#}");
    }

    #[test]
    fn server_secret_is_created_once_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server_secret");
        let first = load_or_create_secret(&path).unwrap();
        assert_eq!(first.len(), SERVER_SECRET_LEN);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create_secret(&path).unwrap(), first);
        // no temporary files are left behind
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&path, b"short").unwrap();
        let err = load_or_create_secret(&path).unwrap_err().to_string();
        assert!(err.contains("5 bytes"), "{err}");
    }

    #[test]
    fn settings_follow_the_config() {
        let mut config = Config::embedded_defaults();
        config.security.session_ttl_hours = 2;
        config.limits.max_body_bytes = 4096;
        let settings = settings_from(&config, "https://chat.example.org/", vec![1; 32].into());
        assert_eq!(settings.public_url, "https://chat.example.org");
        assert_eq!(settings.server_name, "chat.example.org");
        assert_eq!(settings.session_ttl_secs, 7200);
        assert_eq!(settings.verification_ttl_secs, 24 * 3600);
        assert_eq!(settings.max_request_bytes, 4096);
        assert_eq!(settings.min_kdf, config.min_client_kdf());
        config.limits.max_group_members = 7;
        config.limits.max_message_bytes = 5000;
        let settings = settings_from(&config, "http://x", vec![1; 32].into());
        assert_eq!(settings.max_group_members, 7);
        assert_eq!(settings.max_envelope_body_bytes, 5000);
    }

    #[test]
    fn default_limits_hold_the_largest_message_to_the_largest_group() {
        let config = Config::embedded_defaults();
        let settings = settings_from(&config, "http://x", vec![1; 32].into());
        let largest = ferrogram_handlers::message::max_send_request_bytes(&settings);
        assert!(largest <= config.limits.max_body_bytes, "{largest}");
        assert!(
            largest + COMMAND_FRAME_OVERHEAD <= config.limits.max_frame_bytes,
            "{largest}"
        );
    }

    #[test]
    fn url_authority_brackets_ipv6_and_names_any_address_as_loopback() {
        assert_eq!(url_authority("0.0.0.0:80".parse().unwrap()), "127.0.0.1:80");
        assert_eq!(url_authority("[::]:80".parse().unwrap()), "[::1]:80");
        assert_eq!(
            url_authority("[2001:db8::1]:8080".parse().unwrap()),
            "[2001:db8::1]:8080"
        );
    }
}
