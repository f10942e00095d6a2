//! Ferrogram command handlers: one module per command, all registered by
//! [`register_all`]. Handlers see a [`HandlerCtx`] of storage and service
//! traits, never actix, so they are unit-tested with fakes.

use async_trait::async_trait;
use ferrogram_core::command::{AuthSession, CommandLogEntry, DispatchEnv, Registry};
use ferrogram_core::proto::KdfParams;
use ferrogram_core::ratelimit::RateLimiter;
use ferrogram_core::ApiError;
use ferrogram_storage::Storage;
use std::sync::Arc;

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
        f.debug_struct("OutgoingMail").field("subject", &self.subject).finish_non_exhaustive()
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
}

/// The context every handler receives.
pub struct HandlerCtx {
    pub storage: Storage,
    pub mail: Arc<dyn MailQueue>,
    pub settings: Settings,
    pub rate_limiter: RateLimiter,
    pub command_log: Arc<dyn CommandLogSink>,
}

/// Every command this server answers, one line each.
pub fn register_all(registry: &mut Registry<HandlerCtx>) {
    let _ = registry;
}

#[async_trait]
impl DispatchEnv for HandlerCtx {
    async fn authenticate(&self, token: &str) -> Result<AuthSession, ApiError> {
        let _ = token;
        Err(ApiError::unauthorized())
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
