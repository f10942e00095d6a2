//! Ferrogram command handlers: one module per command, all registered by
//! [`register_all`]. Handlers see a [`HandlerCtx`] of storage and service
//! traits, never actix, so they are unit-tested with fakes.
//!
//! Module paths mirror command names: `account::register` is
//! `account.register`.

pub mod account;
pub mod chat;
pub mod me;
pub mod message;
pub mod notify;
pub mod presence;
pub mod rules;
pub mod server;
pub mod session;
pub mod user;

mod checks;
mod error;
mod mail;
mod paging;
mod password;
mod secrets;
mod views;

#[cfg(test)]
mod tests;

use async_trait::async_trait;
use ferrogram_core::command::{
    AuthSession, CommandHandler, CommandLogEntry, DispatchEnv, Registry,
};
use ferrogram_core::commands;
use ferrogram_core::ids::Timestamp;
use ferrogram_core::proto::KdfParams;
use ferrogram_core::ratelimit::RateLimiter;
use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_storage::invitations::InvitationLimits;
use ferrogram_storage::{sessions, EventStore, Storage};
use std::sync::Arc;

use crate::error::Fail;
pub use crate::notify::{NoopNotifier, Notifier};

/// One email to send. Bodies never reach a log.
#[derive(Clone)]
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

impl std::fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Queues mail for sending. Never blocks and never fails the request: delivery
/// errors are retried and logged by the implementation (the server's `Mailer` actor).
pub trait MailQueue: Send + Sync {
    fn enqueue(&self, mail: OutgoingMail);
}

/// Where command-log lines go (the server writes them to the configured file).
pub trait CommandLogSink: Send + Sync {
    fn write(&self, entry: &CommandLogEntry);
}

/// Argon2id cost of the server-side hash of `auth_key`.
#[derive(Debug, Clone, Copy)]
pub struct HashCost {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

/// What handlers need to know from the server configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server_name: String,
    /// Base URL used in email links, without a trailing slash.
    pub public_url: String,
    pub registration_open: bool,
    pub session_ttl_secs: i64,
    pub verification_ttl_secs: i64,
    pub resend_cooldown_secs: i64,
    /// Wrong code attempts after which a verification code is void.
    pub max_code_attempts: u32,
    pub auth_hash: HashCost,
    /// Smallest client KDF parameters accepted at registration; also what
    /// pre-login answers for unknown emails.
    pub min_kdf: KdfParams,
    pub max_request_bytes: usize,
    /// 32+ random bytes generated on first start, kept in the data folder.
    pub server_secret: Arc<[u8]>,
    /// Most members a group may have, its owner included
    /// ([`DEFAULT_MAX_GROUP_MEMBERS`]).
    pub max_group_members: usize,
    /// Largest encrypted message body (an envelope's `body`: ciphertext and
    /// tag) in bytes ([`DEFAULT_MAX_ENVELOPE_BODY_BYTES`]).
    pub max_envelope_body_bytes: usize,
    /// Largest reply a list command builds (`limits.max_reply_bytes`,
    /// [`DEFAULT_MAX_REPLY_BYTES`]): `chat.list` and `message.history` pages
    /// stop before it (always holding at least one item) and say there is
    /// more; the `resume` backlog reads pages of at most this.
    pub max_reply_bytes: usize,
    /// Pending invitations per account and their lifetime
    /// (`limits.max_pending_invitations`, `limits.invitation_ttl_secs`).
    pub invitations: InvitationLimits,
    /// Bytes of message and edit bodies one account may have stored
    /// (`limits.account_storage_bytes`); 0 means no limit. The writer's
    /// rules ([`rules::ChatPolicy`]) refuse a send past it.
    pub account_storage_bytes: u64,
    /// Bench mode (`bench.enabled`, load tests only): `account.register`
    /// creates accounts already verified and sends no mail. The server also
    /// lowers `min_kdf` and `auth_hash` then.
    pub bench_accounts: bool,
}

pub const DEFAULT_MAX_GROUP_MEMBERS: usize = 1000;
pub const DEFAULT_MAX_ENVELOPE_BODY_BYTES: usize = 64 * 1024;
/// 4 MiB: a quarter of the 16 MiB frames the client library accepts.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// The context every handler receives.
pub struct HandlerCtx {
    pub storage: Storage,
    pub mail: Arc<dyn MailQueue>,
    pub settings: Settings,
    pub rate_limiter: RateLimiter,
    pub command_log: Arc<dyn CommandLogSink>,
    /// Reaches connected clients (the WebSocket gateway).
    pub notifier: Arc<dyn Notifier>,
    /// The one writer of chat events: the storage backend's [`EventStore`]
    /// (in the server, the SQLite group-commit `EventWriter`). Start it with
    /// the chat rules (`rules::ChatPolicy::from_settings(&settings)`) and
    /// `notify::commit_listener(notifier.clone())`, so committed events
    /// reach the same notifier.
    pub writer: Arc<dyn EventStore>,
}

/// Every command this server answers, one line each: the handler of each
/// declaration of `ferrogram_core::commands` (a test pins that none is
/// missing).
pub fn register_all(registry: &mut Registry<HandlerCtx>) {
    add(registry, commands::GetServerInfo);
    add(registry, commands::Prelogin);
    add(registry, commands::Register);
    add(registry, commands::Verify);
    add(registry, commands::ResendVerification);
    add(registry, commands::CreateSession);
    add(registry, commands::ListSessions);
    add(registry, commands::RevokeOtherSessions);
    add(registry, commands::DeleteCurrentSession);
    add(registry, commands::RevokeSession);
    add(registry, commands::GetMe);
    add(registry, commands::UpdateMe);
    add(registry, commands::DeleteAccount);
    add(registry, commands::ChangePassword);
    add(registry, commands::SearchUsers);
    add(registry, commands::GetUser);
    add(registry, commands::GetUserKeys);
    add(registry, commands::CreateDirectChat);
    add(registry, commands::CreateGroup);
    add(registry, commands::GetChat);
    add(registry, commands::ListChats);
    add(registry, commands::RenameChat);
    add(registry, commands::AddMembers);
    add(registry, commands::RemoveMember);
    add(registry, commands::LeaveChat);
    add(registry, commands::SetRole);
    add(registry, commands::TransferOwnership);
    add(registry, commands::Typing);
    add(registry, commands::ListInvitations);
    add(registry, commands::AcceptInvitation);
    add(registry, commands::DeclineInvitation);
    add(registry, commands::SendMessage);
    add(registry, commands::EditMessage);
    add(registry, commands::DeleteMessage);
    add(registry, commands::GetHistory);
    add(registry, commands::MarkRead);
    add(registry, commands::MarkDelivered);
    add(registry, commands::GetPresence);
}

/// A duplicate name is a programming error: it fails the start-up (and the
/// test that pins the list of names) loudly rather than shadowing a command.
fn add<H: CommandHandler<HandlerCtx>>(registry: &mut Registry<HandlerCtx>, handler: H) {
    if let Err(duplicate) = registry.register(handler) {
        panic!("{duplicate}");
    }
}

/// What a bearer token resolved to.
enum TokenLookup {
    Unknown,
    Expired,
    Valid(AuthSession),
}

#[async_trait]
impl DispatchEnv for HandlerCtx {
    /// Token -> SHA-256 -> session. Only the hash is ever stored or looked up,
    /// so the database never sees the token itself.
    async fn authenticate(&self, token: &str) -> Result<AuthSession, ApiError> {
        // Anything that is not one of our tokens is refused without a
        // database round trip.
        if !secrets::is_well_formed_token(token) {
            return Err(ApiError::unauthorized());
        }
        let token_hash = secrets::sha256(token.as_bytes());
        let now = Timestamp::now();
        let lookup = self
            .storage
            .run(move |conn| -> Result<TokenLookup, Fail> {
                let Some(found) = sessions::by_token_hash(conn, &token_hash)? else {
                    return Ok(TokenLookup::Unknown);
                };
                // The index lookup already matched the hash; comparing again in
                // constant time keeps the final decision free of early exits.
                if !secrets::ct_eq(&found.token_hash, &token_hash) {
                    return Ok(TokenLookup::Unknown);
                }
                // Expired sessions stay until pruned, so the client keeps
                // getting `session_expired` (and knows to log in again)
                // rather than a bare `unauthorized`.
                if found.session.is_expired(now) {
                    return Ok(TokenLookup::Expired);
                }
                if found.session.needs_touch(now) {
                    sessions::touch(conn, &found.session.id, now)?;
                }
                Ok(TokenLookup::Valid(AuthSession {
                    user_id: found.session.user_id,
                    session_id: found.session.id,
                    verified: found.user_verified,
                }))
            })
            .await?;
        match lookup {
            TokenLookup::Valid(session) => Ok(session),
            TokenLookup::Expired => Err(ApiError::new(
                ErrorCode::SessionExpired,
                "this session has expired; log in again",
            )),
            TokenLookup::Unknown => Err(ApiError::unauthorized()),
        }
    }

    fn rate_limiter(&self) -> &RateLimiter {
        &self.rate_limiter
    }

    fn log_command(&self, entry: &CommandLogEntry) {
        self.command_log.write(entry);
    }

    fn max_request_bytes(&self) -> usize {
        self.settings.max_request_bytes
    }
}
