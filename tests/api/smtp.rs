//! Mail through a real SMTP server: Debian's aiosmtpd (driven by
//! `smtp_server.py` beside this file) listening on loopback, storing what it
//! accepts in a Maildir; unencrypted, with STARTTLS, with implicit TLS, with
//! AUTH PLAIN and LOGIN. The TLS server's certificate comes from a CA the test
//! makes, which the server trusts through `mail.smtp.ca_file`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferrogram_client::ServerAddr;
use ferrogram_server::config::{MailTransport, SmtpSecurity};
use secrecy::SecretString;

use ferrogram_test_support::mail;
use ferrogram_test_support::{
    connect, free_port, identity_a, spawn_app_with, wait_for_mails_in, TestApp, TestUser,
    TEST_CA_FILE, TEST_KDF,
};

const PYTHON: &str = "/usr/bin/python3";

/// How the test SMTP server is secured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Security {
    None,
    Starttls,
    ImplicitTls,
}

/// The account the test SMTP server accepts, and its one AUTH mechanism.
struct Auth {
    user: &'static str,
    password: &'static str,
    mechanism: &'static str,
}

/// An aiosmtpd process; killed (by its own pid) when dropped.
struct SmtpSink {
    child: Child,
    addr: SocketAddr,
    maildir: PathBuf,
    /// One line per AUTH attempt: "MECHANISM LOGIN ok|refused".
    auth_log: PathBuf,
    /// Holds the CA certificate (`TEST_CA_FILE`) when the server uses TLS.
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts aiosmtpd on a free loopback port (it picks it and says which).
    fn start(security: Security, auth: Option<&Auth>) -> SmtpSink {
        let imported = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            imported,
            "{PYTHON} cannot import aiosmtpd: install python3-aiosmtpd \
             (scripts/test installs it); the mail tests need a real SMTP server"
        );
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("Maildir");
        let auth_log = dir.path().join("auth.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/smtp_server.py");
        let mut command = Command::new(PYTHON);
        command.arg(&script).arg(&maildir);
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        match security {
            Security::None => {}
            Security::Starttls => {
                crate::tls::make_certificates(dir.path());
                command.arg("--starttls").arg(&cert).arg(&key);
            }
            Security::ImplicitTls => {
                crate::tls::make_certificates(dir.path());
                command.arg("--smtps").arg(&cert).arg(&key);
            }
        }
        if let Some(auth) = auth {
            command
                .arg("--auth")
                .args([auth.user, auth.password, auth.mechanism])
                .arg("--auth-log")
                .arg(&auth_log);
        }
        let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start aiosmtpd");
        // The first line is the port; none when the script failed.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Ok(port) = line.trim().parse::<u16>() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the SMTP server did not start: {}",
                std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
            );
        };
        SmtpSink {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            maildir,
            auth_log,
            dir,
        }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join(TEST_CA_FILE)
    }

    /// Delivered mail (Maildir's `new/`, so never a file half written in `tmp/`).
    fn delivered(&self) -> PathBuf {
        self.maildir.join("new")
    }

    fn auth_attempts(&self) -> Vec<String> {
        std::fs::read_to_string(&self.auth_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn use_smtp(config: &mut ferrogram_server::config::Config, addr: SocketAddr) {
    config.mail.transport = MailTransport::Smtp;
    config.mail.smtp.host = addr.ip().to_string();
    config.mail.smtp.port = addr.port();
    config.mail.smtp.security = SmtpSecurity::None;
    config.mail.smtp.username = String::new();
    config.mail.max_retries = 2;
}

/// The server's mail settings for `sink`: its security, its CA, `auth`'s login.
fn use_sink(
    config: &mut ferrogram_server::config::Config,
    sink: &SmtpSink,
    security: SmtpSecurity,
    auth: Option<&Auth>,
) {
    use_smtp(config, sink.addr);
    config.mail.smtp.security = security;
    config.mail.smtp.ca_file = Some(sink.ca_file());
    if let Some(auth) = auth {
        auth.user.clone_into(&mut config.mail.smtp.username);
        config.mail.smtp.password = SecretString::from(auth.password.to_owned());
    }
}

/// Registers a user, waits for the verification mail at `sink`, checks its
/// content, verifies with its code and logs in; returns the received mail.
async fn register_and_verify_through(app: &TestApp, sink: &SmtpSink, tag: &str) -> mail::Mail {
    let user = TestUser::new(tag);
    app.register(&user).await;
    wait_for_mails_in(&sink.delivered(), &user.email, 1).await;
    assert_eq!(mail::count_to(&sink.delivered(), &user.email), 1);
    let received = mail::newest_to(&sink.delivered(), &user.email).unwrap();
    assert!(
        received
            .header("subject")
            .is_some_and(|s| s.contains("Verify")),
        "{:?}",
        received.headers
    );
    assert!(received.header("from").is_some_and(|f| f.contains('@')));
    assert!(
        received
            .header("x-rcptto")
            .is_some_and(|to| to.eq_ignore_ascii_case(&user.email)),
        "{:?}",
        received.headers
    );
    let code = received.code().expect("a code in the received mail");
    let link = received.link().expect("a link in the received mail");
    assert!(link.starts_with(app.base_url()), "{link}");
    let verified = app.client.verify_code(&user.email, &code).await.unwrap();
    assert!(verified.verified);
    assert!(app.login(&user).await.me().await.unwrap().verified);
    // Nothing went to the outbox folder.
    assert_eq!(mail::count_to(&app.outbox(), &user.email), 0);
    received
}

#[tokio::test]
async fn verification_mail_arrives_over_smtp() {
    let sink = SmtpSink::start(Security::None, None);
    let app = spawn_app_with(|c| use_smtp(c, sink.addr)).await;
    let received = register_and_verify_through(&app, &sink, "smtp").await;
    assert_eq!(received.header("x-test-tls"), Some("no"));
    assert_eq!(received.header("x-test-auth"), Some("none"));
}

#[tokio::test]
async fn mail_goes_through_starttls_with_auth_plain() {
    let auth = Auth {
        user: "ferrogram",
        password: "plain secret 1",
        mechanism: "PLAIN",
    };
    let sink = SmtpSink::start(Security::Starttls, Some(&auth));
    let app = spawn_app_with(|c| use_sink(c, &sink, SmtpSecurity::Starttls, Some(&auth))).await;
    let received = register_and_verify_through(&app, &sink, "starttls").await;
    assert_eq!(received.header("x-test-tls"), Some("yes"));
    assert_eq!(received.header("x-test-auth"), Some("PLAIN ferrogram"));
    assert_eq!(sink.auth_attempts(), ["PLAIN ferrogram ok"]);
}

#[tokio::test]
async fn mail_goes_through_implicit_tls_with_auth_login() {
    let auth = Auth {
        user: "ferrogram",
        password: "login secret 2",
        mechanism: "LOGIN",
    };
    let sink = SmtpSink::start(Security::ImplicitTls, Some(&auth));
    let app = spawn_app_with(|c| use_sink(c, &sink, SmtpSecurity::Tls, Some(&auth))).await;
    let received = register_and_verify_through(&app, &sink, "smtps").await;
    assert_eq!(received.header("x-test-tls"), Some("yes"));
    assert_eq!(received.header("x-test-auth"), Some("LOGIN ferrogram"));
    assert_eq!(sink.auth_attempts(), ["LOGIN ferrogram ok"]);
}

#[tokio::test]
async fn an_smtp_server_whose_ca_is_not_trusted_gets_nothing() {
    let auth = Auth {
        user: "ferrogram",
        password: "never sent 3",
        mechanism: "PLAIN",
    };
    for (security, smtp_security) in [
        (Security::Starttls, SmtpSecurity::Starttls),
        (Security::ImplicitTls, SmtpSecurity::Tls),
    ] {
        let sink = SmtpSink::start(security, Some(&auth));
        let app = spawn_app_with(|c| {
            use_sink(c, &sink, smtp_security, Some(&auth));
            c.mail.smtp.ca_file = None;
            c.mail.max_retries = 0;
        })
        .await;
        let user = TestUser::new("untrusted");
        app.register(&user).await;
        // Stopping the server waits until its queued mail is sent or given up.
        let outbox = app.outbox();
        app.server.stop();
        assert_eq!(mail::count_to(&sink.maildir, &user.email), 0);
        assert_eq!(mail::count_to(&outbox, &user.email), 0);
        // The password never went out: the TLS handshake failed before AUTH.
        assert!(
            sink.auth_attempts().is_empty(),
            "{:?}",
            sink.auth_attempts()
        );
    }
}

#[tokio::test]
async fn a_dead_mail_server_does_not_fail_registration() {
    // Nothing listens on this port: every send fails, in the background.
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let app = spawn_app_with(|c| {
        use_smtp(c, addr);
        // Shutdown waits for queued mail: give up on it at once.
        c.mail.max_retries = 0;
    })
    .await;
    let user = TestUser::new("nosmtp");
    let started = Instant::now();
    let registered = app.register(&user).await;
    assert!(!registered.verified);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "registration waited for the mail server"
    );
    app.login(&user).await;
}

/// The real server binary, its log on stderr: a refused SMTP password gives
/// up on the mail with a logged error that names neither the password nor the
/// recipient.
#[tokio::test]
async fn a_wrong_smtp_password_is_logged_as_an_error_without_the_password() {
    let auth = Auth {
        user: "ferrogram",
        password: "the right one 4",
        mechanism: "PLAIN",
    };
    let wrong_password = "Wr0ng-SMTP-pa55word";
    let sink = SmtpSink::start(Security::Starttls, Some(&auth));
    let data = tempfile::tempdir().unwrap();
    let stderr_path = data.path().join("server.err");
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrogram-server"));
    command
        .env("FERROGRAM__DATA_DIR", data.path().join("data"))
        .env("FERROGRAM__SERVER__HOST", "127.0.0.1")
        .env("FERROGRAM__SERVER__PORT", "0")
        .env("FERROGRAM__SERVER__WORKERS", "1")
        .env_remove("RUST_LOG")
        .env("FERROGRAM__LOG__LEVEL", "warn")
        .env("FERROGRAM__MAIL__TRANSPORT", "smtp")
        .env("FERROGRAM__MAIL__MAX_RETRIES", "0")
        .env("FERROGRAM__MAIL__SMTP__HOST", "127.0.0.1")
        .env("FERROGRAM__MAIL__SMTP__PORT", sink.addr.port().to_string())
        .env("FERROGRAM__MAIL__SMTP__SECURITY", "starttls")
        .env("FERROGRAM__MAIL__SMTP__CA_FILE", sink.ca_file())
        .env("FERROGRAM__MAIL__SMTP__USERNAME", auth.user)
        .env("FERROGRAM__MAIL__SMTP__PASSWORD", wrong_password);
    // The cheap test KDF, as in-process test servers have it.
    for (key, value) in [
        ("M_COST_KIB", TEST_KDF.m_cost_kib),
        ("T_COST", TEST_KDF.t_cost),
        ("P_COST", TEST_KDF.p_cost),
    ] {
        command.env(
            format!("FERROGRAM__SECURITY__MIN_CLIENT_KDF__{key}"),
            value.to_string(),
        );
        command.env(
            format!("FERROGRAM__SECURITY__AUTH_HASH__{key}"),
            value.to_string(),
        );
    }
    let mut server = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let port: u16 = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = server.kill();
            let _ = server.wait();
            panic!(
                "no listening address from the server: {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        };
        if let Some(address) = line.trim().strip_prefix("listening on") {
            break address.trim().rsplit(':').next().unwrap().parse().unwrap();
        }
    };

    let client = connect(ServerAddr::from(SocketAddr::from(([127, 0, 0, 1], port)))).await;
    let user = TestUser::new("wrongpw");
    let registered = client.register(user.params(identity_a())).await.unwrap();
    assert!(!registered.verified);

    // A graceful stop waits until the queued mail is sent or given up.
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "graceful stop exits 0, got {status}");

    assert_eq!(sink.auth_attempts(), ["PLAIN ferrogram refused"]);
    assert_eq!(mail::count_to(&sink.maildir, &user.email), 0);
    let log = std::fs::read_to_string(&stderr_path).unwrap();
    let given_up: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("mail not sent, giving up"))
        .collect();
    assert_eq!(given_up.len(), 1, "{log}");
    assert!(given_up[0].contains("ERROR"), "{log}");
    assert!(
        given_up[0].contains("535"),
        "the SMTP answer is logged: {log}"
    );
    assert!(
        !log.contains(wrong_password),
        "the password was logged: {log}"
    );
    assert!(
        !log.contains(&user.email),
        "the recipient was logged: {log}"
    );
}
