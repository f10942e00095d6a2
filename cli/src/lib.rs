//! `ferrogram-cli`: the client library from a terminal. Lives in the library
//! (the binary is one line) so tests run it in-process with their own input,
//! output and config folder.

mod chat;
mod files;

use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ferrogram_core::ids::{SessionId, Timestamp};
use serde::Serialize;
use serde_json::json;
use zeroize::Zeroizing;

use ferrogram_client::{Client, ClientError, ServerAddr, Session};
pub use files::{CliConfig, StoredSession, CONFIG_FILE, SESSION_FILE};

/// Exit statuses, for scripts.
pub mod exit {
    pub const OK: i32 = 0;
    /// Any other failure (refused input, server error, local files).
    pub const FAILURE: i32 = 1;
    /// Bad command line (clap's own status).
    pub const USAGE: i32 = 2;
    pub const UNREACHABLE: i32 = 3;
    pub const NOT_FERROGRAM: i32 = 4;
    /// Wrong email or password, or the stored session has ended.
    pub const AUTH: i32 = 5;
}

#[derive(Debug, Parser)]
#[command(
    name = "ferrogram-cli",
    version,
    about = "Ferrogram from a terminal: accounts, sessions, chats and end-to-end encrypted \
             messages on a Ferrogram server",
    after_help = "The server comes from --server, else `server = \"host:port\"` in \
                  ~/.config/ferrogram/cli.toml, else the server of the stored log-in, \
                  else a prompt. Passwords are asked for on the terminal, or read one \
                  per line from standard input when it is not a terminal.\n\n\
                  Exit status: 0 ok, 1 failure, 2 usage, 3 server unreachable, \
                  4 not a Ferrogram server, 5 bad credentials or session ended."
)]
struct Args {
    /// Server as host:port, [v6]:port, or http(s)://host:port.
    #[arg(long, short = 's', global = true, value_name = "ADDR")]
    server: Option<String>,
    /// Extra CA certificate (PEM) to trust for https:// servers.
    #[arg(long, global = true, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Print results (and errors) as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Folder of cli.toml and the stored session.
    #[arg(long, global = true, env = "FERROGRAM_CLI_DIR", value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Folder of the local message stores (default: `data` in an explicit
    /// --config-dir, else ~/.local/share/ferrogram).
    #[arg(
        long,
        global = true,
        env = "FERROGRAM_CLI_DATA_DIR",
        value_name = "DIR"
    )]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the server's name, version and features.
    Server,
    /// Create an account (asks for a password; keys are made on this machine).
    Register {
        #[arg(long)]
        email: String,
        #[arg(long)]
        handle: String,
        /// Display name (default: the handle).
        #[arg(long)]
        name: Option<String>,
    },
    /// Verify an email address with the 6-digit code, or the link's token.
    Verify {
        #[arg(long, requires = "code", conflicts_with = "token")]
        email: Option<String>,
        #[arg(long, requires = "email", conflicts_with = "token")]
        code: Option<String>,
        /// The token of the mailed link, or the whole link.
        #[arg(long, required_unless_present = "code")]
        token: Option<String>,
    },
    /// Ask for another verification email.
    Resend {
        #[arg(long)]
        email: String,
    },
    /// Log in and store the session (mode 0600) in the config folder.
    Login {
        #[arg(long)]
        email: String,
        /// Shown in the list of sessions.
        #[arg(long)]
        device: Option<String>,
    },
    /// Show the account of the stored session.
    Whoami,
    /// Change my display name, bio or username (options left out stay).
    /// Everyone who shares a chat with me sees the change at once.
    #[command(group(clap::ArgGroup::new("change").required(true).multiple(true)))]
    Profile {
        #[arg(long, group = "change")]
        name: Option<String>,
        #[arg(long, group = "change")]
        bio: Option<String>,
        #[arg(long, group = "change")]
        handle: Option<String>,
        /// Who may put me into a group directly; anyone else only invites
        /// me (see `group invitations`).
        #[arg(long, group = "change", value_name = "WHO")]
        who_can_add_me: Option<GroupAddPolicyArg>,
    },
    /// List the account's sessions, or end some of them.
    Sessions {
        #[command(subcommand)]
        action: Option<SessionsAction>,
    },
    /// End the stored session.
    Logout,
    /// Change the password (asks for the current and the new one). Ends every
    /// other session.
    Passwd,
    /// Delete the account for good (asks for the password).
    Delete {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    #[command(flatten)]
    Messaging(chat::MessagingCommand),
}

#[derive(Debug, Subcommand)]
enum SessionsAction {
    /// List them (the default).
    List,
    /// End the session with this id.
    Revoke { id: String },
    /// End every session but this one.
    RevokeOthers,
}

/// Where the CLI reads and writes; the real terminal or a test's buffers.
pub struct Io<'a> {
    pub stdin: &'a mut dyn BufRead,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    /// True on a terminal: prompts are shown and passwords read without echo.
    pub interactive: bool,
}

/// A failure with its exit status; `kind` names it in JSON output.
#[derive(Debug)]
struct CliError {
    status: i32,
    kind: &'static str,
    code: Option<String>,
    message: String,
}

impl CliError {
    fn local(message: impl Into<String>) -> Self {
        Self {
            status: exit::FAILURE,
            kind: "local",
            code: None,
            message: message.into(),
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        let code = e.code().map(|c| c.as_str().to_owned());
        let (status, kind, hint) = match &e {
            ClientError::Unreachable { .. } => (
                exit::UNREACHABLE,
                "unreachable",
                " (is the server running, and are host and port right?)",
            ),
            ClientError::NotFerrogram { .. } => (exit::NOT_FERROGRAM, "not_ferrogram", ""),
            ClientError::Api(_) if e.is_invalid_credentials() => {
                (exit::AUTH, "api", " (wrong email or password)")
            }
            ClientError::Api(_) if e.is_unauthorized() => (
                exit::AUTH,
                "api",
                " (the session has ended: log in again with `ferrogram-cli login`)",
            ),
            ClientError::Api(_) => (exit::FAILURE, "api", ""),
            ClientError::InvalidInput(_) if e.is_invalid_credentials() => {
                (exit::AUTH, "invalid_input", "")
            }
            ClientError::InvalidInput(_) => (exit::FAILURE, "invalid_input", ""),
            ClientError::Crypto(_) => (exit::FAILURE, "crypto", ""),
            ClientError::Protocol(_) => (exit::FAILURE, "protocol", ""),
        };
        let message = match e.retry_after() {
            Some(secs) => format!("{e}{hint}; try again in {secs} s"),
            None => format!("{e}{hint}"),
        };
        Self {
            status,
            kind,
            code,
            message,
        }
    }
}

/// Runs the CLI with `args` (the first is the program name) and answers the
/// exit status.
pub async fn run<I, T>(args: I, io: &mut Io<'_>) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            let status = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let text = e.render().to_string();
            if e.use_stderr() {
                let _ = write!(io.stderr, "{text}");
            } else {
                let _ = write!(io.stdout, "{text}");
            }
            return status;
        }
    };
    let json = args.json;
    match execute(args, io).await {
        Ok(()) => exit::OK,
        Err(e) => {
            if json {
                let body = json!({"error": {"kind": e.kind, "code": e.code, "message": e.message}});
                let _ = writeln!(io.stdout, "{body}");
            } else {
                let _ = writeln!(io.stderr, "ferrogram-cli: {}", e.message);
            }
            e.status
        }
    }
}

/// Everything a command needs: arguments, files, output.
struct Ctx<'a, 'io> {
    args: &'a Args,
    io: &'a mut Io<'io>,
    dir: PathBuf,
    config: CliConfig,
}

async fn execute(args: Args, io: &mut Io<'_>) -> Result<(), CliError> {
    let Some(dir) = args.config_dir.clone().or_else(files::default_dir) else {
        return Err(CliError::local(
            "no config folder: set HOME, or pass --config-dir",
        ));
    };
    let config = CliConfig::load(&dir).map_err(CliError::local)?;
    let mut ctx = Ctx {
        args: &args,
        io,
        dir,
        config,
    };
    match &args.command {
        Command::Server => {
            let client = ctx.connect_anonymous().await?;
            let info = client.server_info().clone();
            ctx.print(&info, || {
                format!(
                    "{} {} at {} (protocol {}){}\nregistration: {}\nfeatures: {}",
                    info.name,
                    info.version,
                    client.base_url(),
                    info.protocol_version,
                    if client.addr().tls { ", TLS" } else { "" },
                    if info.registration_open {
                        "open"
                    } else {
                        "closed"
                    },
                    if info.features.is_empty() {
                        "-".to_owned()
                    } else {
                        info.features.join(", ")
                    }
                )
            })
        }
        Command::Register {
            email,
            handle,
            name,
        } => {
            let client = ctx.connect_anonymous().await?;
            let password = ctx.new_password("Password for the new account: ")?;
            ctx.note("Generating your keys (two RSA-3072 key pairs: a few seconds)...");
            let params = ferrogram_client::RegisterParams::new(
                email,
                handle,
                name.as_deref().unwrap_or(handle),
                password.as_str(),
            );
            let done = client.register(params).await?;
            ctx.print(&done, || {
                format!(
                    "Registered @{} (user {}). A code is on its way to {email}: \
                     ferrogram-cli verify --email {email} --code CODE",
                    done.handle, done.user_id
                )
            })
        }
        Command::Verify { email, code, token } => {
            let client = ctx.connect_anonymous().await?;
            let done = match (email, code, token) {
                (Some(email), Some(code), None) => client.verify_code(email, code).await?,
                (None, None, Some(token)) => client.verify_link_token(link_token(token)).await?,
                _ => return Err(CliError::local("give --email and --code, or --token")),
            };
            ctx.print(&done, || "Email address verified.".to_owned())
        }
        Command::Resend { email } => {
            let client = ctx.connect_anonymous().await?;
            let done = client.resend_verification(email).await?;
            ctx.print(&done, || {
                format!(
                    "If {email} has an unverified account, a new code is on its way. \
                     Next resend possible in {} s.",
                    done.cooldown_secs
                )
            })
        }
        Command::Login { email, device } => {
            let client = ctx.connect_anonymous().await?;
            let password = ctx.password("Password: ")?;
            let device = device
                .clone()
                .or_else(|| ctx.config.device_name.clone())
                .unwrap_or_else(default_device_name);
            let session = client.login(email, &password, Some(&device)).await?;
            let path = ctx.store(&session)?;
            chat::save_keys(&ctx, &session).await?;
            let me = session.cached_me();
            let out = json!({
                "user_id": me.id,
                "handle": me.handle,
                "verified": me.verified,
                "session_id": session.id(),
            });
            ctx.print(&out, || {
                let mut text = format!(
                    "Logged in as @{} on {} (session stored in {}).",
                    me.handle,
                    client.base_url(),
                    path.display()
                );
                if !me.verified {
                    text.push_str("\nYour email address is not verified yet.");
                }
                text
            })
        }
        Command::Profile {
            name,
            bio,
            handle,
            who_can_add_me,
        } => {
            let (session, _) = ctx.stored_session().await?;
            let update = ferrogram_core::proto::UpdateProfileRequest {
                display_name: name.clone(),
                bio: bio.clone(),
                handle: handle.clone(),
                who_can_add_me: who_can_add_me.map(Into::into),
            };
            let me = session.update_profile(update).await?;
            ctx.print(&me, || {
                format!(
                    "profile saved: @{} ({}); who can add me to groups: {}",
                    me.handle,
                    me.display_name,
                    me.who_can_add_me.as_str()
                )
            })
        }
        Command::Whoami => {
            let (session, _) = ctx.stored_session().await?;
            let me = session.cached_me();
            ctx.print(&me, || {
                format!(
                    "@{} ({}), user {}\nemail: {}{}\nbio: {}\nfingerprint: {}\nserver: {}",
                    me.handle,
                    me.display_name,
                    me.id,
                    me.email,
                    if me.verified { "" } else { " (not verified)" },
                    if me.bio.is_empty() { "-" } else { &me.bio },
                    me.fingerprint,
                    session.client().base_url()
                )
            })
        }
        Command::Sessions { action } => {
            let (session, _) = ctx.stored_session().await?;
            match action {
                None | Some(SessionsAction::List) => {
                    let list = session.sessions().await?;
                    ctx.print(&json!({ "sessions": list }), || {
                        let mut text = String::new();
                        for s in &list {
                            let _ = writeln!(
                                text,
                                "{} {}  {:<24} created {}  last seen {}",
                                if s.current { "*" } else { " " },
                                s.id,
                                s.device_name,
                                format_time(s.created_at),
                                format_time(s.last_seen_at)
                            );
                        }
                        text.trim_end().to_owned()
                    })
                }
                Some(SessionsAction::Revoke { id }) => {
                    session.revoke_session(&SessionId(id.clone())).await?;
                    if id == &session.id().0 {
                        StoredSession::remove(&ctx.dir).map_err(CliError::local)?;
                    }
                    ctx.print(&json!({"revoked": 1}), || format!("Session {id} ended."))
                }
                Some(SessionsAction::RevokeOthers) => {
                    let n = session.revoke_other_sessions().await?;
                    ctx.print(&json!({ "revoked": n }), || {
                        format!("Ended {n} other session(s).")
                    })
                }
            }
        }
        Command::Logout => {
            let stored = StoredSession::load(&ctx.dir).map_err(CliError::local)?;
            let Some(stored) = stored else {
                return ctx.print(&json!({"logged_out": false}), || {
                    "Not logged in.".to_owned()
                });
            };
            let client = ctx.connect_for(&stored).await?;
            let ended = match client.resume(&stored.token).await {
                Ok(session) => {
                    session.logout().await?;
                    true
                }
                // Already ended on the server: forgetting it here is all that is left.
                Err(e) if e.is_unauthorized() => false,
                Err(e) => return Err(e.into()),
            };
            StoredSession::remove(&ctx.dir).map_err(CliError::local)?;
            ctx.print(&json!({"logged_out": true}), || {
                if ended {
                    "Logged out.".to_owned()
                } else {
                    "The session had already ended; forgotten here.".to_owned()
                }
            })
        }
        Command::Passwd => {
            let stored = StoredSession::load(&ctx.dir)
                .map_err(CliError::local)?
                .ok_or_else(not_logged_in)?;
            let client = ctx.connect_for(&stored).await?;
            let old = ctx.password("Current password: ")?;
            let new = ctx.new_password("New password: ")?;
            // The private keys are needed to re-seal them: log in afresh.
            let session = client
                .login(&stored.email, &old, Some(&default_device_name()))
                .await?;
            let revoked = session.change_password(&old, &new).await?;
            ctx.store(&session)?;
            chat::save_keys(&ctx, &session).await?;
            ctx.print(&json!({ "revoked": revoked }), || {
                format!("Password changed. {revoked} other session(s) ended; this one is stored.")
            })
        }
        Command::Delete { yes } => {
            let (session, stored) = ctx.stored_session().await?;
            if !yes {
                if !ctx.io.interactive {
                    return Err(CliError::local(
                        "deleting an account needs --yes when not on a terminal",
                    ));
                }
                let answer = ctx.prompt(&format!(
                    "Delete @{} and everything it owns for good? Type the handle to confirm: ",
                    stored.handle
                ))?;
                if answer.trim() != stored.handle {
                    return Err(CliError::local("not confirmed; nothing was deleted"));
                }
            }
            let password = ctx.password("Password: ")?;
            session.delete_account(&password).await?;
            StoredSession::remove(&ctx.dir).map_err(CliError::local)?;
            ctx.print(&json!({"deleted": true}), || {
                format!("Account @{} deleted.", stored.handle)
            })
        }
        Command::Messaging(command) => chat::run(&mut ctx, command).await,
    }
}

fn not_logged_in() -> CliError {
    CliError {
        status: exit::AUTH,
        kind: "local",
        code: None,
        message: "not logged in: run `ferrogram-cli login --email ...` first".to_owned(),
    }
}

/// Accepts the whole link too: `https://host/verify?token=...`.
fn link_token(given: &str) -> &str {
    match given.split_once("token=") {
        Some((_, rest)) => rest.split('&').next().unwrap_or(rest),
        None => given,
    }
}

fn default_device_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    match host {
        Some(host) => format!("ferrogram-cli on {host}")
            .chars()
            .take(ferrogram_core::validate::DEVICE_NAME_MAX)
            .collect(),
        None => "ferrogram-cli".to_owned(),
    }
}

/// `2026-11-24 15:57 UTC`.
fn format_time(at: Timestamp) -> String {
    let millis = at.as_millis();
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| millis.to_string())
}

impl Ctx<'_, '_> {
    fn print<T: Serialize>(
        &mut self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> Result<(), CliError> {
        let text = if self.args.json {
            serde_json::to_string_pretty(value)
                .map_err(|e| CliError::local(format!("cannot encode output: {e}")))?
        } else {
            human()
        };
        writeln!(self.io.stdout, "{text}").map_err(|e| CliError::local(format!("output: {e}")))
    }

    /// A progress note for people (never in JSON mode, never on stdout).
    fn note(&mut self, text: &str) {
        if !self.args.json {
            let _ = writeln!(self.io.stderr, "{text}");
        }
    }

    fn prompt(&mut self, prompt: &str) -> Result<String, CliError> {
        if self.io.interactive {
            let _ = write!(self.io.stderr, "{prompt}");
            let _ = self.io.stderr.flush();
        }
        read_line(self.io.stdin, prompt)
    }

    /// A password: without echo on a terminal, else the next line of stdin.
    fn password(&mut self, prompt: &str) -> Result<Zeroizing<String>, CliError> {
        if !self.io.interactive {
            return read_line(self.io.stdin, prompt).map(Zeroizing::new);
        }
        let _ = write!(self.io.stderr, "{prompt}");
        let _ = self.io.stderr.flush();
        let echo_off = set_terminal_echo(false);
        let line = read_line(self.io.stdin, prompt);
        if echo_off {
            set_terminal_echo(true);
            let _ = writeln!(self.io.stderr);
        }
        line.map(Zeroizing::new)
    }

    /// A new password, typed twice on a terminal.
    fn new_password(&mut self, prompt: &str) -> Result<Zeroizing<String>, CliError> {
        let first = self.password(prompt)?;
        if self.io.interactive {
            let again = self.password("Repeat it: ")?;
            if *again != *first {
                return Err(CliError::local("the two passwords differ"));
            }
        }
        Ok(first)
    }

    /// The server named by --server, cli.toml, or (interactively) a prompt.
    fn chosen_server(&mut self) -> Result<Option<ServerAddr>, CliError> {
        let text = match (&self.args.server, &self.config.server) {
            (Some(flag), _) => flag.clone(),
            (None, Some(config)) => config.clone(),
            (None, None) => return Ok(None),
        };
        self.parse_addr(&text).map(Some)
    }

    fn parse_addr(&self, text: &str) -> Result<ServerAddr, CliError> {
        let mut addr = ServerAddr::parse(text).map_err(|e| CliError::local(e.to_string()))?;
        addr.ca_file = self
            .args
            .ca_file
            .clone()
            .or_else(|| self.config.ca_file.clone());
        Ok(addr)
    }

    /// For commands without a session: flag, config, stored session's server,
    /// else a prompt whose answer is saved to cli.toml.
    async fn connect_anonymous(&mut self) -> Result<Client, CliError> {
        let addr = match self.chosen_server()? {
            Some(addr) => addr,
            None => match StoredSession::load(&self.dir).ok().flatten() {
                Some(stored) => self.parse_addr(&stored.server)?,
                None => self.ask_server()?,
            },
        };
        Ok(Client::connect(addr).await?)
    }

    fn ask_server(&mut self) -> Result<ServerAddr, CliError> {
        if !self.io.interactive {
            return Err(CliError::local(format!(
                "no server given: pass --server host:port, or write server = \"host:port\" \
                 into {}",
                self.dir.join(CONFIG_FILE).display()
            )));
        }
        let answer = self.prompt("Ferrogram server (host:port): ")?;
        let addr = self.parse_addr(answer.trim())?;
        if !self.dir.join(CONFIG_FILE).exists() {
            if let Ok(path) = CliConfig::write_server(&self.dir, answer.trim()) {
                let _ = writeln!(self.io.stderr, "Saved in {}.", path.display());
            }
        }
        Ok(addr)
    }

    /// Connects to the server a stored session belongs to. A token is never
    /// sent to another server, so a different --server or cli.toml is refused.
    async fn connect_for(&mut self, stored: &StoredSession) -> Result<Client, CliError> {
        let own = self.parse_addr(&stored.server)?;
        if let Some(chosen) = self.chosen_server()? {
            if chosen.base_url() != own.base_url() {
                return Err(CliError::local(format!(
                    "the stored session belongs to {}, not {}: log out first, or log in \
                     with --server {}",
                    own.base_url(),
                    chosen.base_url(),
                    chosen.base_url()
                )));
            }
        }
        Ok(Client::connect(own).await?)
    }

    async fn stored_session(&mut self) -> Result<(Session, StoredSession), CliError> {
        let stored = StoredSession::load(&self.dir)
            .map_err(CliError::local)?
            .ok_or_else(not_logged_in)?;
        let session_path = self.dir.join(SESSION_FILE);
        if !files::is_private(&session_path) {
            let note = format!(
                "warning: {} is readable by others; run chmod 600 on it",
                session_path.display()
            );
            self.note(&note);
        }
        let client = self.connect_for(&stored).await?;
        let session = client.resume(&stored.token).await?;
        Ok((session, stored))
    }

    fn store(&mut self, session: &Session) -> Result<PathBuf, CliError> {
        let me = session.cached_me();
        StoredSession {
            server: session.client().base_url().to_owned(),
            email: me.email,
            handle: me.handle,
            user_id: me.id.0,
            session_id: session.id().0.clone(),
            token: session.token().to_owned(),
        }
        .save(&self.dir)
        .map_err(CliError::local)
    }
}

fn read_line(stdin: &mut dyn BufRead, prompt: &str) -> Result<String, CliError> {
    let mut line = String::new();
    let n = stdin
        .read_line(&mut line)
        .map_err(|e| CliError::local(format!("cannot read input: {e}")))?;
    if n == 0 {
        return Err(CliError::local(format!(
            "no input for {:?} (standard input ended)",
            prompt.trim_end_matches([':', ' '])
        )));
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Turns terminal echo off or on with `stty`; answers whether it worked.
fn set_terminal_echo(on: bool) -> bool {
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return false;
    };
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(tty)
        .status()
        .is_ok_and(|s| s.success())
}

/// The binary's `main`: the real terminal, a Tokio runtime, the exit status.
pub fn main() -> i32 {
    use std::io::IsTerminal;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ferrogram-cli: cannot start: {e}");
            return exit::FAILURE;
        }
    };
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut stdin = stdin.lock();
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut io = Io {
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
        interactive,
    };
    runtime.block_on(run(std::env::args_os(), &mut io))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run_with(args: &[&str], stdin: &str) -> (i32, String, String) {
        let mut input = std::io::Cursor::new(stdin.as_bytes().to_vec());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut io = Io {
            stdin: &mut input,
            stdout: &mut out,
            stderr: &mut err,
            interactive: false,
        };
        let mut full = vec!["ferrogram-cli"];
        full.extend_from_slice(args);
        let status = run(full, &mut io).await;
        (
            status,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[tokio::test]
    async fn usage_errors_exit_2_and_help_exits_0() {
        let (status, _, err) = run_with(&["frobnicate"], "").await;
        assert_eq!(status, exit::USAGE);
        assert!(err.contains("frobnicate"), "{err}");
        let (status, out, _) = run_with(&["--help"], "").await;
        assert_eq!(status, exit::OK);
        assert!(
            out.contains("register") && out.contains("Exit status"),
            "{out}"
        );
        let (status, _, err) = run_with(&["verify", "--email", "a@b.org"], "").await;
        assert_eq!(status, exit::USAGE, "{err}");
    }

    #[tokio::test]
    async fn no_server_without_a_terminal_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let dir_arg = dir.path().to_str().unwrap();
        let (status, _, err) = run_with(&["--config-dir", dir_arg, "server"], "").await;
        assert_eq!(status, exit::FAILURE);
        assert!(
            err.contains("no server given") && err.contains("cli.toml"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn unreachable_server_exit_3_with_json_error() {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = format!("127.0.0.1:{port}");
        let dir_arg = dir.path().to_str().unwrap();
        let (status, _, err) = run_with(
            &["--config-dir", dir_arg, "--server", &server, "server"],
            "",
        )
        .await;
        assert_eq!(status, exit::UNREACHABLE);
        assert!(
            err.contains("cannot reach") && err.contains(&server),
            "{err}"
        );
        let (status, out, _) = run_with(
            &[
                "--config-dir",
                dir_arg,
                "--server",
                &server,
                "--json",
                "server",
            ],
            "",
        )
        .await;
        assert_eq!(status, exit::UNREACHABLE);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["error"]["kind"], "unreachable");
    }

    #[tokio::test]
    async fn session_commands_need_a_login() {
        let dir = tempfile::tempdir().unwrap();
        let dir_arg = dir.path().to_str().unwrap();
        for command in ["whoami", "passwd", "sessions"] {
            let (status, _, err) = run_with(&["--config-dir", dir_arg, command], "").await;
            assert_eq!(status, exit::AUTH, "{command}");
            assert!(err.contains("not logged in"), "{err}");
        }
        let (status, out, _) = run_with(&["--config-dir", dir_arg, "logout"], "").await;
        assert_eq!(status, exit::OK);
        assert!(out.contains("Not logged in"), "{out}");
    }

    #[tokio::test]
    async fn a_stored_token_is_never_sent_to_another_server() {
        let dir = tempfile::tempdir().unwrap();
        StoredSession {
            server: "http://127.0.0.1:1".into(),
            email: "a@b.org".into(),
            handle: "ada".into(),
            user_id: 1,
            session_id: "s".into(),
            token: "t".into(),
        }
        .save(dir.path())
        .unwrap();
        let dir_arg = dir.path().to_str().unwrap();
        let (status, _, err) = run_with(
            &["--config-dir", dir_arg, "--server", "127.0.0.1:2", "whoami"],
            "",
        )
        .await;
        assert_eq!(status, exit::FAILURE);
        assert!(err.contains("belongs to http://127.0.0.1:1"), "{err}");
    }

    #[test]
    fn link_tokens_and_times() {
        assert_eq!(link_token("abc"), "abc");
        assert_eq!(link_token("https://h:1/verify?token=abc&x=1"), "abc");
        assert_eq!(format_time(Timestamp::EPOCH), "1970-01-01 00:00 UTC");
        assert_eq!(
            format_time(Timestamp::from_millis(1_764_000_000_000)),
            "2025-11-24 16:00 UTC"
        );
    }

    #[test]
    fn client_errors_map_to_exit_statuses() {
        use ferrogram_core::{ApiError, ErrorCode};
        let cases = [
            (
                ClientError::Unreachable {
                    addr: "a".into(),
                    reason: "r".into(),
                },
                exit::UNREACHABLE,
            ),
            (
                ClientError::NotFerrogram {
                    addr: "a".into(),
                    reason: "r".into(),
                },
                exit::NOT_FERROGRAM,
            ),
            (
                ClientError::Api(ApiError::new(ErrorCode::InvalidCredentials, "no")),
                exit::AUTH,
            ),
            (ClientError::Api(ApiError::unauthorized()), exit::AUTH),
            (ClientError::Api(ApiError::rate_limited(5)), exit::FAILURE),
            (ClientError::Protocol("p".into()), exit::FAILURE),
        ];
        for (error, status) in cases {
            let text = error.to_string();
            let cli = CliError::from(error);
            assert_eq!(cli.status, status, "{text}");
        }
        let limited = CliError::from(ClientError::Api(ApiError::rate_limited(5)));
        assert!(
            limited.message.contains("try again in 5 s"),
            "{}",
            limited.message
        );
        assert_eq!(limited.code.as_deref(), Some("rate_limited"));
    }
}

/// `--who-can-add-me`: the privacy setting "who can add me to groups".
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum GroupAddPolicyArg {
    /// Anyone who knows my user id.
    Everyone,
    /// Members of my groups, and people I have written to in a direct chat.
    ChatPartners,
    /// Nobody: every add is an invitation.
    Nobody,
}

impl From<GroupAddPolicyArg> for ferrogram_core::proto::GroupAddPolicy {
    fn from(arg: GroupAddPolicyArg) -> Self {
        match arg {
            GroupAddPolicyArg::Everyone => Self::Everyone,
            GroupAddPolicyArg::ChatPartners => Self::ChatPartners,
            GroupAddPolicyArg::Nobody => Self::Nobody,
        }
    }
}
