//! The `Mailer` actor: sends the server's email (verification codes and links)
//! through SMTP or writes it into an outbox folder, retrying failed sends with
//! exponential backoff.
//!
//! Requests only ever `do_send` to it through [`MailerHandle`], so a slow or
//! failing mail server never fails or delays a request. Logs name the
//! recipient's domain and the error, never the address or the body.

use crate::config::{Config, MailTransport, SmtpSecurity};
use actix::prelude::*;
use ferrogram_handlers::{MailQueue, OutgoingMail};
use lettre::address::Envelope;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How often and how patiently a failed send is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Delay before the first retry; doubled for each further one.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    pub fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
        }
    }

    /// Delay before retry number `retry` (0-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(20));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Where mail goes.
#[derive(Clone)]
pub enum Transport {
    /// One `.eml` file per mail in this folder.
    Outbox(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Transport {
    /// The transport the configuration asks for.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        match config.mail.transport {
            MailTransport::Outbox => Ok(Transport::Outbox(config.outbox_dir())),
            MailTransport::Smtp => {
                let smtp = &config.mail.smtp;
                let builder = match smtp.security {
                    SmtpSecurity::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                            .tls(Tls::Required(tls_parameters(config)?))
                    }
                    SmtpSecurity::Tls => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                            .tls(Tls::Wrapper(tls_parameters(config)?))
                    }
                    SmtpSecurity::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                    }
                };
                let mut builder = builder
                    .port(smtp.port)
                    .timeout(Some(Duration::from_secs(30)));
                if !smtp.username.is_empty() {
                    builder = builder.credentials(Credentials::new(
                        smtp.username.clone(),
                        smtp.password.expose_secret().to_owned(),
                    ));
                }
                Ok(Transport::Smtp(builder.build()))
            }
        }
    }

    /// A one-line description for the startup message (no credentials).
    pub fn describe(config: &Config) -> String {
        match config.mail.transport {
            MailTransport::Outbox => format!("outbox {}", config.outbox_dir().display()),
            MailTransport::Smtp => {
                let smtp = &config.mail.smtp;
                let security = match smtp.security {
                    SmtpSecurity::Starttls => "starttls",
                    SmtpSecurity::Tls => "tls",
                    SmtpSecurity::None => "unencrypted",
                };
                let auth = if smtp.username.is_empty() {
                    ""
                } else {
                    ", with login"
                };
                format!("smtp {}:{} ({security}{auth})", smtp.host, smtp.port)
            }
        }
    }

    async fn deliver(&self, job: &Job) -> Result<(), DeliveryError> {
        match self {
            Transport::Outbox(dir) => {
                let dir = dir.clone();
                let bytes = job.bytes.clone();
                tokio::task::spawn_blocking(move || write_outbox_file(&dir, &bytes))
                    .await
                    .map_err(|e| DeliveryError {
                        retriable: true,
                        message: e.to_string(),
                    })?
                    .map(|_| ())
                    .map_err(|e| DeliveryError {
                        retriable: true,
                        message: e.to_string(),
                    })
            }
            Transport::Smtp(smtp) => smtp
                .send_raw(&job.envelope, &job.bytes)
                .await
                .map(|_| ())
                .map_err(|e| DeliveryError {
                    retriable: !e.is_permanent(),
                    message: e.to_string(),
                }),
        }
    }
}

/// How the SMTP server's certificate is checked: for `mail.smtp.host`, against
/// the system's trusted CAs and those of `mail.smtp.ca_file` if set.
fn tls_parameters(config: &Config) -> anyhow::Result<TlsParameters> {
    let smtp = &config.mail.smtp;
    let mut builder = TlsParameters::builder(smtp.host.clone());
    if let Some(file) = &smtp.ca_file {
        let path = config.resolve(file);
        let pem = std::fs::read(&path).map_err(|e| {
            anyhow::anyhow!("mail.smtp.ca_file: cannot read {}: {e}", path.display())
        })?;
        let certificates = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                anyhow::anyhow!("mail.smtp.ca_file: {}: invalid PEM: {e}", path.display())
            })?;
        if certificates.is_empty() {
            anyhow::bail!("mail.smtp.ca_file: no CERTIFICATE in {}", path.display());
        }
        for der in certificates {
            let certificate = Certificate::from_der(der.to_vec())
                .map_err(|e| anyhow::anyhow!("mail.smtp.ca_file: {}: {e}", path.display()))?;
            builder = builder.add_root_certificate(certificate);
        }
    }
    Ok(builder.build()?)
}

struct DeliveryError {
    retriable: bool,
    message: String,
}

/// Writes one mail into the outbox atomically (a hidden temporary file,
/// renamed into place), readable only by the server's user. Returns its path.
pub fn write_outbox_file(dir: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut id = [0u8; 6];
    rand::fill(&mut id);
    let name = format!(
        "{}-{}.eml",
        ferrogram_core::ids::Timestamp::now(),
        hex::encode(id)
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    let path = dir.join(name);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// One formatted mail on its way, with its attempt count.
#[derive(Clone)]
struct Job {
    envelope: Envelope,
    bytes: Arc<[u8]>,
    /// Recipient domain, the only part of the address that is logged.
    domain: String,
    /// The full recipient, to scrub from error messages before logging.
    recipient: String,
    attempt: u32,
}

/// The mail-sending actor.
pub struct Mailer {
    from: Mailbox,
    transport: Arc<Transport>,
    retry: RetryPolicy,
    /// Mails accepted and not yet delivered or given up.
    pending: usize,
    idle_waiters: Vec<oneshot::Sender<()>>,
}

impl Mailer {
    pub fn new(from: Mailbox, transport: Transport, retry: RetryPolicy) -> Self {
        Self {
            from,
            transport: Arc::new(transport),
            retry,
            pending: 0,
            idle_waiters: Vec::new(),
        }
    }

    /// The mailer the configuration describes.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let from =
            Mailbox::from_str(&config.mail.from).map_err(|e| anyhow::anyhow!("mail.from: {e}"))?;
        Ok(Self::new(
            from,
            Transport::from_config(config)?,
            RetryPolicy::new(config.mail.max_retries),
        ))
    }

    fn build_job(&self, mail: OutgoingMail) -> Result<Job, String> {
        let to = Mailbox::from_str(&mail.to).map_err(|e| format!("invalid recipient: {e}"))?;
        let domain = to.email.domain().to_owned();
        let recipient = to.email.to_string();
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject);
        let message = match mail.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(mail.text, html)),
            None => builder.singlepart(SinglePart::plain(mail.text)),
        }
        .map_err(|e| format!("cannot build message: {e}"))?;
        Ok(Job {
            envelope: message.envelope().clone(),
            bytes: message.formatted().into(),
            domain,
            recipient,
            attempt: 0,
        })
    }

    fn attempt(&mut self, job: Job, ctx: &mut Context<Self>) {
        let transport = self.transport.clone();
        let sending = job.clone();
        let delivery = async move { transport.deliver(&sending).await };
        ctx.spawn(delivery.into_actor(self).map(move |result, act, ctx| {
            let mut job = job;
            match result {
                Ok(()) => {
                    tracing::info!(domain = %job.domain, attempts = job.attempt + 1, "mail sent");
                    act.finished();
                }
                Err(e) => {
                    let error = e.message.replace(&job.recipient, "<recipient>");
                    if e.retriable && job.attempt < act.retry.max_retries {
                        let delay = act.retry.delay(job.attempt);
                        tracing::warn!(
                            domain = %job.domain,
                            attempt = job.attempt + 1,
                            retry_in_ms = delay.as_millis() as u64,
                            %error,
                            "mail not sent, will retry"
                        );
                        job.attempt += 1;
                        ctx.run_later(delay, move |act, ctx| act.attempt(job, ctx));
                    } else {
                        tracing::error!(
                            domain = %job.domain,
                            attempts = job.attempt + 1,
                            %error,
                            "mail not sent, giving up"
                        );
                        act.finished();
                    }
                }
            }
        }));
    }

    fn finished(&mut self) {
        self.pending = self.pending.saturating_sub(1);
        if self.pending == 0 {
            for waiter in self.idle_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

impl Actor for Mailer {
    type Context = Context<Self>;
}

/// Queue one mail.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendMail(pub OutgoingMail);

impl Handler<SendMail> for Mailer {
    type Result = ();

    fn handle(&mut self, SendMail(mail): SendMail, ctx: &mut Context<Self>) {
        match self.build_job(mail) {
            Ok(job) => {
                self.pending += 1;
                self.attempt(job, ctx);
            }
            // Only the reason: the address may be what is malformed.
            Err(reason) => tracing::error!(%reason, "mail dropped"),
        }
    }
}

/// Resolves once every queued mail is delivered or given up.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

impl Handler<Flush> for Mailer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        if self.pending == 0 {
            return Box::pin(async {});
        }
        let (tx, rx) = oneshot::channel();
        self.idle_waiters.push(tx);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

/// The handlers' view of the mailer: queue and forget.
#[derive(Clone)]
pub struct MailerHandle {
    addr: Addr<Mailer>,
}

impl MailerHandle {
    pub fn new(addr: Addr<Mailer>) -> Self {
        Self { addr }
    }

    /// Waits up to `timeout` for queued mail to be sent; returns whether it was.
    pub async fn flush(&self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.addr.send(Flush)).await,
            Ok(Ok(()))
        )
    }
}

impl MailQueue for MailerHandle {
    fn enqueue(&self, mail: OutgoingMail) {
        self.addr.do_send(SendMail(mail));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    fn mail(to: &str) -> OutgoingMail {
        OutgoingMail {
            to: to.to_owned(),
            subject: "Your Ferrogram code".to_owned(),
            text: "Your code is 123456.\n".to_owned(),
            html: Some("<p>Your code is <b>123456</b>.</p>".to_owned()),
        }
    }

    fn from() -> Mailbox {
        "Ferrogram <noreply@ferrogram.test>".parse().unwrap()
    }

    fn eml_files(dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::new(5);
        assert_eq!(policy.delay(0), Duration::from_secs(2));
        assert_eq!(policy.delay(1), Duration::from_secs(4));
        assert_eq!(policy.delay(3), Duration::from_secs(16));
        assert_eq!(policy.delay(30), Duration::from_secs(300));
    }

    #[actix_web::test]
    async fn outbox_writes_one_parsable_mail_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let mailer = Mailer::new(
            from(),
            Transport::Outbox(outbox.clone()),
            RetryPolicy::new(0),
        )
        .start();
        let handle = MailerHandle::new(mailer);
        handle.enqueue(mail("alice@example.org"));
        handle.enqueue(mail("bob@example.org"));
        handle.enqueue(mail("not an address"));
        assert!(handle.flush(Duration::from_secs(10)).await);
        let files = eml_files(&outbox);
        assert_eq!(files.len(), 2, "{files:?}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&files[0]).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("Subject: Your Ferrogram code"), "{text}");
        assert!(
            text.contains("From: Ferrogram <noreply@ferrogram.test>"),
            "{text}"
        );
        assert!(text.contains("To: alice@example.org") || text.contains("To: bob@example.org"));
        assert!(text.contains("Your code is 123456."), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
    }

    #[actix_web::test]
    async fn outbox_failure_is_retried_then_given_up_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        // a file where the outbox folder should be: every write fails
        let blocked = dir.path().join("outbox");
        std::fs::write(&blocked, b"").unwrap();
        let policy = RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        };
        let handle =
            MailerHandle::new(Mailer::new(from(), Transport::Outbox(blocked), policy).start());
        handle.enqueue(mail("carol@example.org"));
        assert!(handle.flush(Duration::from_secs(10)).await);
    }

    #[test]
    fn an_unreadable_or_empty_smtp_ca_file_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::embedded_defaults();
        config.data_dir = dir.path().to_owned();
        config.mail.transport = MailTransport::Smtp;
        config.mail.smtp.ca_file = Some("missing.pem".into());
        let error = Transport::from_config(&config).err().unwrap().to_string();
        assert!(
            error.starts_with("mail.smtp.ca_file: cannot read") && error.contains("missing.pem"),
            "{error}"
        );
        std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
        config.mail.smtp.ca_file = Some("empty.pem".into());
        let error = Transport::from_config(&config).err().unwrap().to_string();
        assert!(
            error.starts_with("mail.smtp.ca_file: no CERTIFICATE"),
            "{error}"
        );
        config.mail.smtp.ca_file = None;
        assert!(Transport::from_config(&config).is_ok());
    }

    /// A real SMTP server on loopback: Python's aiosmtpd writing into a Maildir.
    struct SmtpSink {
        child: Child,
        maildir: PathBuf,
    }

    impl SmtpSink {
        fn start(port: u16, maildir: &Path) -> SmtpSink {
            let child = Command::new("/usr/bin/python3")
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(maildir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3-aiosmtpd is installed (scripts/test installs it)");
            SmtpSink {
                child,
                maildir: maildir.to_owned(),
            }
        }

        fn received(&self) -> Vec<PathBuf> {
            eml_files(&self.maildir.join("new"))
        }
    }

    impl Drop for SmtpSink {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[actix_web::test]
    async fn smtp_delivers_and_retries_until_the_server_is_up() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = Config::embedded_defaults();
        config.mail.transport = MailTransport::Smtp;
        config.mail.smtp.host = "127.0.0.1".to_owned();
        config.mail.smtp.port = port;
        config.mail.smtp.security = SmtpSecurity::None;
        let policy = RetryPolicy {
            max_retries: 30,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        let mailer = Mailer::new(from(), Transport::from_config(&config).unwrap(), policy);
        let handle = MailerHandle::new(mailer.start());

        // Nothing listens yet: the first attempts fail and are retried.
        handle.enqueue(mail("dave@example.org"));
        tokio::time::sleep(Duration::from_millis(400)).await;
        let maildir = dir.path().join("maildir");
        let sink = SmtpSink::start(port, &maildir);

        assert!(
            handle.flush(Duration::from_secs(30)).await,
            "mail was not delivered"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.received().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let received = sink.received();
        assert_eq!(received.len(), 1, "{received:?}");
        let text = std::fs::read_to_string(&received[0]).unwrap();
        assert!(text.contains("Subject: Your Ferrogram code"), "{text}");
        assert!(text.contains("Your code is 123456."), "{text}");
        assert!(text.contains("dave@example.org"), "{text}");
    }
}
