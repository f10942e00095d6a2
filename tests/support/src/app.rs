//! The real server in-process on port 0 (`spawn_app()`), test users and the
//! typed helpers every test uses.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ferrogram_client::proto::{KdfAlg, KdfParams, RegisterResponse};
use ferrogram_client::{Client, ClientOptions, Identity, RegisterParams, ServerAddr, Session};
use ferrogram_core::ratelimit::{Rate, RateRule};
use ferrogram_server::config::{Argon2Cost, Config};
use ferrogram_server::startup::{spawn_background, BackgroundServer};
use tempfile::TempDir;

use crate::mail::{self, Mail};

/// The cheapest Argon2id cost the crypto floor allows: test accounts derive
/// keys in milliseconds.
pub const TEST_KDF: KdfParams = KdfParams {
    alg: KdfAlg::Argon2id,
    m_cost_kib: 64,
    t_cost: 1,
    p_cost: 1,
};

/// Where a TLS test server's data folder holds the CA certificate that issued
/// its certificate; the test client trusts it.
pub const TEST_CA_FILE: &str = "ca.pem";

/// How long a test waits for a mail to arrive.
const MAIL_TIMEOUT: Duration = Duration::from_secs(15);

/// RSA-3072 key generation takes seconds: two identities per test binary,
/// shared by every account (the server does not require distinct keys).
pub fn identity_a() -> Arc<Identity> {
    static ID: OnceLock<Arc<Identity>> = OnceLock::new();
    ID.get_or_init(|| Arc::new(ferrogram_client::generate_identity().expect("RSA keys")))
        .clone()
}

pub fn identity_b() -> Arc<Identity> {
    static ID: OnceLock<Arc<Identity>> = OnceLock::new();
    ID.get_or_init(|| Arc::new(ferrogram_client::generate_identity().expect("RSA keys")))
        .clone()
}

/// Rate limits that no test reaches unless it means to.
pub fn generous(rule: &mut RateRule) {
    *rule = RateRule::both(Rate::new(100_000, 1), Rate::new(100_000, 1));
}

/// The test configuration: loopback, port 0, the given data folder, cheap
/// hashing, generous rate limits, quiet logs.
pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config::embedded_defaults();
    config.server.host = "127.0.0.1".into();
    config.server.port = 0;
    config.server.workers = 2;
    data_dir.clone_into(&mut config.data_dir);
    let cheap = Argon2Cost {
        m_cost_kib: TEST_KDF.m_cost_kib,
        t_cost: TEST_KDF.t_cost,
        p_cost: TEST_KDF.p_cost,
    };
    config.security.auth_hash = cheap;
    config.security.min_client_kdf = cheap;
    config.mail.max_retries = 0;
    config.log.level = "warn".into();
    for (_, rule) in config.limits.rate_limits.each_mut() {
        generous(rule);
    }
    config
}

/// A running server, its data folder and a connected client.
pub struct TestApp {
    pub server: BackgroundServer,
    pub client: Client,
    pub config: Config,
    /// Kept alive for the server's lifetime; removed on drop.
    pub dir: Arc<TempDir>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server whose test configuration `customize` may change first.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut config = test_config(dir.path());
    customize(&mut config);
    start(config, dir).await
}

async fn start(config: Config, dir: Arc<TempDir>) -> TestApp {
    let server = spawn_background(config.clone()).expect("server starts");
    let mut addr = ServerAddr::from(server.addr);
    if config.tls.cert.is_some() {
        addr = addr
            .with_tls(true)
            .with_ca_file(config.data_dir.join(TEST_CA_FILE));
    }
    let client = connect(addr).await;
    TestApp {
        server,
        client,
        config,
        dir,
    }
}

/// A client with the cheap test KDF.
pub async fn connect(addr: ServerAddr) -> Client {
    let options = ClientOptions {
        kdf_override: Some(TEST_KDF),
        ..ClientOptions::default()
    };
    Client::connect_with(addr, options)
        .await
        .expect("client connects")
}

/// A person to register, with unique email and handle.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub email: String,
    pub handle: String,
    pub display_name: String,
    pub password: String,
}

impl TestUser {
    /// `tag`: a few lower-case letters saying what the user is for.
    pub fn new(tag: &str) -> TestUser {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id() % 10_000;
        TestUser {
            email: format!("{tag}.{pid}.{n}@example.org"),
            handle: format!("{tag}_{pid}_{n}"),
            display_name: format!("{} {n}", capitalise(tag)),
            password: format!("correct horse battery {tag} {n}"),
        }
    }

    pub fn params(&self, identity: Arc<Identity>) -> RegisterParams {
        RegisterParams::new(
            &self.email,
            &self.handle,
            &self.display_name,
            &self.password,
        )
        .with_identity(identity)
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

impl TestApp {
    pub fn outbox(&self) -> PathBuf {
        self.config.outbox_dir()
    }

    pub fn base_url(&self) -> &str {
        self.client.base_url()
    }

    /// Registers `user` with identity A.
    pub async fn register(&self, user: &TestUser) -> RegisterResponse {
        self.client
            .register(user.params(identity_a()))
            .await
            .unwrap_or_else(|e| panic!("register {}: {e}", user.email))
    }

    /// Registers and verifies with the mailed code.
    pub async fn register_verified(&self, user: &TestUser) -> RegisterResponse {
        let registered = self.register(user).await;
        let code = self
            .mail_to(&user.email)
            .await
            .code()
            .expect("code in mail");
        self.client
            .verify_code(&user.email, &code)
            .await
            .expect("verify with code");
        registered
    }

    pub async fn login(&self, user: &TestUser) -> Session {
        self.client
            .login(&user.email, &user.password, Some("test device"))
            .await
            .unwrap_or_else(|e| panic!("login {}: {e}", user.email))
    }

    /// The newest mail to `email`, waiting for the first one to arrive.
    pub async fn mail_to(&self, email: &str) -> Mail {
        self.wait_for_mails(email, 1).await;
        mail::newest_to(&self.outbox(), email).expect("mail present")
    }

    /// Waits until at least `count` mails to `email` are in the outbox.
    pub async fn wait_for_mails(&self, email: &str, count: usize) {
        wait_for_mails_in(&self.outbox(), email, count).await;
    }

    /// Stops the server and starts a new one on the same data folder (and the
    /// same configuration, but a new port).
    pub async fn restart(self) -> TestApp {
        let TestApp {
            server,
            config,
            dir,
            ..
        } = self;
        server.stop();
        start(config, dir).await
    }
}

pub async fn wait_for_mails_in(dir: &Path, email: &str, count: usize) {
    let start = Instant::now();
    loop {
        if mail::count_to(dir, email) >= count {
            // Give a writer that is just finishing its file a moment.
            tokio::time::sleep(Duration::from_millis(20)).await;
            return;
        }
        assert!(
            start.elapsed() < MAIL_TIMEOUT,
            "no mail #{count} to {email} in {} after {MAIL_TIMEOUT:?}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A free port on loopback (for a server to bind later, or to find closed).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
