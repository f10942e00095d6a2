//! Mail through a real SMTP server: Debian's aiosmtpd listening on loopback,
//! storing what it receives in a Maildir.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrogram_server::config::{MailTransport, SmtpSecurity};

use crate::helpers::{spawn_app_with, wait_for_mails_in, TestUser};
use crate::mail;

const PYTHON: &str = "/usr/bin/python3";

/// An aiosmtpd process; killed (by its own pid) when dropped.
struct SmtpSink {
    child: Child,
    addr: SocketAddr,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aiosmtpd_available() -> bool {
    Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts aiosmtpd on a free loopback port; `None` when it is not installed.
fn start_sink() -> Option<SmtpSink> {
    if !aiosmtpd_available() {
        eprintln!(
            "SKIPPED: {PYTHON} cannot import aiosmtpd (install python3-aiosmtpd; \
             scripts/test does)"
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    // A port can be taken between our probe and aiosmtpd's bind: try a few.
    for _ in 0..5 {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l", &addr.to_string()])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Some(SmtpSink {
                    child,
                    addr,
                    maildir,
                    _dir: dir,
                });
            }
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("aiosmtpd did not start listening");
}

fn use_smtp(config: &mut ferrogram_server::config::Config, addr: SocketAddr) {
    config.mail.transport = MailTransport::Smtp;
    config.mail.smtp.host = addr.ip().to_string();
    config.mail.smtp.port = addr.port();
    config.mail.smtp.security = SmtpSecurity::None;
    config.mail.smtp.username = String::new();
    config.mail.max_retries = 2;
}

#[tokio::test]
async fn verification_mail_arrives_over_smtp() {
    let Some(sink) = start_sink() else {
        return;
    };
    let app = spawn_app_with(|c| use_smtp(c, sink.addr)).await;
    let user = TestUser::new("smtp");
    app.register(&user).await;
    wait_for_mails_in(&sink.maildir, &user.email, 1).await;
    let received = mail::newest_to(&sink.maildir, &user.email).unwrap();
    assert!(
        received
            .header("subject")
            .is_some_and(|s| s.contains("Verify")),
        "{:?}",
        received.headers
    );
    assert!(received.header("from").is_some_and(|f| f.contains('@')));
    let code = received.code().expect("a code in the received mail");
    let link = received.link().expect("a link in the received mail");
    assert!(link.starts_with(app.base_url()), "{link}");
    let verified = app.client.verify_code(&user.email, &code).await.unwrap();
    assert!(verified.verified);
    assert!(app.login(&user).await.me().await.unwrap().verified);
    // Nothing went to the outbox folder.
    assert_eq!(mail::count_to(&app.outbox(), &user.email), 0);
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
