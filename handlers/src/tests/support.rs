//! A test server: registry, context over a temp-file database, a mail queue
//! that collects, a command log that collects, a notifier that records, and
//! typed helpers.

use crate::notify::{commit_listener, RecordingNotifier};
use crate::rules::ChatPolicy;
use crate::{
    register_all, CommandLogSink, HandlerCtx, HashCost, MailQueue, OutgoingMail, Settings,
    DEFAULT_MAX_ENVELOPE_BODY_BYTES, DEFAULT_MAX_GROUP_MEMBERS, DEFAULT_MAX_REPLY_BYTES,
};
use ferrogram_core::b64::B64;
use ferrogram_core::command::{CommandLogEntry, Credentials, Registry, Request};
use ferrogram_core::ids::UserId;
use ferrogram_core::proto::{KdfParams, LoginResponse, PublicKeys};
use ferrogram_core::ratelimit::RateLimiter;
use ferrogram_core::ApiError;
use ferrogram_storage::{EventWriter, Storage, WriterConfig};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// Test-only public keys (the private halves were thrown away): an
/// id-RSASSA-PSS signing key and an rsaEncryption key, 3072 bits each.
pub fn public_keys() -> PublicKeys {
    PublicKeys {
        sign: B64(include_bytes!("../testdata/sign.spki.der").to_vec()),
        enc: B64(include_bytes!("../testdata/enc.spki.der").to_vec()),
    }
}

/// A per-user stand-in for the client's derived auth_key.
pub fn auth_key(handle: &str) -> [u8; 32] {
    crate::secrets::sha256(handle.as_bytes())
}

pub fn b64(bytes: &[u8]) -> String {
    B64::encode(bytes)
}

pub fn register_body(email: &str, handle: &str) -> Value {
    json!({
        "email": email,
        "handle": handle,
        "display_name": format!("Display {handle}"),
        "auth_key": b64(&auth_key(handle)),
        "kdf_salt": b64(&[7; 16]),
        "kdf": KdfParams::DEFAULT,
        "public_keys": public_keys(),
        "sealed_keys": b64(b"sealed private keys"),
    })
}

#[derive(Default)]
pub struct FakeMail {
    pub sent: Mutex<Vec<OutgoingMail>>,
}

impl MailQueue for FakeMail {
    fn enqueue(&self, mail: OutgoingMail) {
        self.sent.lock().unwrap().push(mail);
    }
}

#[derive(Default)]
pub struct MemoryLog {
    pub entries: Mutex<Vec<CommandLogEntry>>,
}

impl CommandLogSink for MemoryLog {
    fn write(&self, entry: &CommandLogEntry) {
        self.entries.lock().unwrap().push(entry.clone());
    }
}

pub fn test_settings() -> Settings {
    Settings {
        server_name: "test server".into(),
        public_url: "https://chat.example.org".into(),
        registration_open: true,
        session_ttl_secs: 3600,
        verification_ttl_secs: 24 * 3600,
        resend_cooldown_secs: 60,
        max_code_attempts: 3,
        // Argon2's minimum: tests hash a lot, and the cost is not under test.
        auth_hash: HashCost {
            m_cost_kib: 8,
            t_cost: 1,
            p_cost: 1,
        },
        min_kdf: KdfParams::DEFAULT,
        max_request_bytes: 64 * 1024,
        server_secret: Arc::from(vec![0x42; 32]),
        max_group_members: DEFAULT_MAX_GROUP_MEMBERS,
        max_envelope_body_bytes: DEFAULT_MAX_ENVELOPE_BODY_BYTES,
        max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
        invitations: ferrogram_storage::invitations::InvitationLimits::default(),
        account_storage_bytes: 0,
        bench_accounts: false,
    }
}

pub struct TestApp {
    pub registry: Registry<HandlerCtx>,
    /// Its `writer` is this app's [`EventWriter`] as an `EventStore`.
    pub ctx: HandlerCtx,
    /// The same writer, for its statistics.
    pub writer: EventWriter,
    pub mail: Arc<FakeMail>,
    pub log: Arc<MemoryLog>,
    pub notifier: Arc<RecordingNotifier>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub fn new() -> Self {
        Self::build(|_| {}, RateLimiter::unlimited())
    }

    pub fn with_settings(change: impl FnOnce(&mut Settings)) -> Self {
        Self::build(change, RateLimiter::unlimited())
    }

    pub fn build(change: impl FnOnce(&mut Settings), rate_limiter: RateLimiter) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path().join("test.sqlite3"), 4).unwrap();
        let mut settings = test_settings();
        change(&mut settings);
        let mail = Arc::new(FakeMail::default());
        let log = Arc::new(MemoryLog::default());
        let notifier = Arc::new(RecordingNotifier::new());
        let writer = EventWriter::start(
            &storage,
            WriterConfig::default(),
            Arc::new(ChatPolicy::from_settings(&settings)),
            Some(commit_listener(notifier.clone())),
        )
        .unwrap();
        let ctx = HandlerCtx {
            storage,
            mail: mail.clone(),
            settings,
            rate_limiter,
            command_log: log.clone(),
            notifier: notifier.clone(),
            writer: Arc::new(writer.clone()),
        };
        let mut registry = Registry::new();
        register_all(&mut registry);
        TestApp {
            registry,
            ctx,
            writer,
            mail,
            log,
            notifier,
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        command: &str,
        token: Option<&str>,
        body: Value,
    ) -> Result<Value, ApiError> {
        let body_len = body.to_string().len();
        self.registry
            .dispatch(
                &self.ctx,
                Request {
                    command: command.into(),
                    ip: "192.0.2.7".parse().unwrap(),
                    request_id: "test".into(),
                    body,
                    body_len,
                },
                Credentials::Token(token.map(Into::into)),
            )
            .await
    }

    /// `call` for commands expected to succeed.
    pub async fn ok(&self, command: &str, token: Option<&str>, body: Value) -> Value {
        match self.call(command, token, body).await {
            Ok(v) => v,
            Err(e) => panic!("{command} failed: {e}"),
        }
    }

    /// `call` for commands expected to fail; returns the error code as text.
    pub async fn err(&self, command: &str, token: Option<&str>, body: Value) -> String {
        match self.call(command, token, body).await {
            Ok(v) => panic!("{command} unexpectedly succeeded: {v}"),
            Err(e) => e.code.as_str().to_owned(),
        }
    }

    pub async fn register(&self, email: &str, handle: &str) -> UserId {
        let resp = self
            .ok("account.register", None, register_body(email, handle))
            .await;
        assert_eq!(resp["verified"], false);
        serde_json::from_value(resp["user_id"].clone()).unwrap()
    }

    pub fn mails(&self) -> Vec<OutgoingMail> {
        self.mail.sent.lock().unwrap().clone()
    }

    pub fn last_mail_to(&self, email: &str) -> OutgoingMail {
        self.mails()
            .into_iter()
            .rev()
            .find(|m| m.to == email)
            .unwrap_or_else(|| panic!("no mail to {email}"))
    }

    pub async fn verify(&self, email: &str) {
        let code = code_in(&self.last_mail_to(email));
        self.ok(
            "account.verify",
            None,
            json!({"email": email, "code": code}),
        )
        .await;
    }

    pub async fn login(&self, email: &str, handle: &str) -> LoginResponse {
        self.login_with(email, &auth_key(handle), "test device")
            .await
    }

    pub async fn login_with(&self, email: &str, key: &[u8], device: &str) -> LoginResponse {
        let body = json!({"email": email, "auth_key": b64(key), "device_name": device});
        serde_json::from_value(self.ok("session.create", None, body).await).unwrap()
    }

    /// Register, verify and log in; returns the id and a session token.
    pub async fn signup(&self, email: &str, handle: &str) -> (UserId, String) {
        let id = self.register(email, handle).await;
        self.verify(email).await;
        (id, self.login(email, handle).await.token)
    }
}

/// The 6-digit code in a verification mail.
pub fn code_in(mail: &OutgoingMail) -> String {
    let marker = "verification code is: ";
    let start = mail.text.find(marker).expect("code in mail") + marker.len();
    mail.text[start..start + 6].to_owned()
}

/// The link token in a verification mail.
pub fn token_in(mail: &OutgoingMail) -> String {
    let marker = "https://chat.example.org/verify?token=";
    let start = mail.text.find(marker).expect("link in mail") + marker.len();
    mail.text[start..start + 43].to_owned()
}
