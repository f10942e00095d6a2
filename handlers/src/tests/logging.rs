//! Nothing secret reaches a log: not the tracing output, not the command log.

use super::support::{auth_key, b64, code_in, token_in, TestApp};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything any test in this binary logged at any level, from the moment
/// the first caller installed the global subscriber. Global, because handlers
/// log from blocking-pool threads too.
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let capture = Capture(buffer.clone());
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || capture.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
            buffer
        })
        .clone()
}

fn text(buffer: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned()
}

#[tokio::test]
async fn a_full_life_cycle_logs_no_secret() {
    let log = captured_log();
    let app = TestApp::new();
    let mut secrets: Vec<String> = Vec::new();

    app.register("secret.person@x.org", "alice").await;
    let mail = app.last_mail_to("secret.person@x.org");
    secrets.extend([
        code_in(&mail),
        token_in(&mail),
        b64(&auth_key("alice")),
        b64(b"sealed private keys"),
    ]);
    app.verify("secret.person@x.org").await;
    let login = app.login("secret.person@x.org", "alice").await;
    secrets.push(login.token.clone());
    app.ok("me.get", Some(&login.token), json!({})).await;
    app.ok("session.list", Some(&login.token), json!({})).await;
    let new_key = b64(&[0x77; 32]);
    secrets.push(new_key.clone());
    let change = json!({
        "old_auth_key": b64(&auth_key("alice")),
        "new_auth_key": new_key,
        "new_kdf_salt": b64(&[1; 16]),
        "new_kdf": ferrogram_core::proto::KdfParams::DEFAULT,
        "sealed_keys": b64(b"resealed"),
    });
    app.ok("me.change_password", Some(&login.token), change)
        .await;
    // failures log too
    app.err(
        "session.create",
        None,
        json!({"email": "secret.person@x.org", "auth_key": b64(&[9; 32])}),
    )
    .await;
    secrets.push(b64(&[9; 32]));
    app.ok(
        "me.delete",
        Some(&login.token),
        json!({ "auth_key": new_key }),
    )
    .await;

    let command_log = serde_json::to_string(&*app.log.entries.lock().unwrap()).unwrap();
    assert!(command_log.contains("me.change_password"));
    let traced = text(&log);
    assert!(traced.contains("logged in"), "the capture works: {traced}");
    for secret in &secrets {
        assert!(
            !command_log.contains(secret.as_str()),
            "command log leaks a secret"
        );
        assert!(
            !traced.contains(secret.as_str()),
            "tracing output leaks a secret"
        );
    }
    // addresses are personal data: they stay out of the logs as well
    assert!(!command_log.contains("secret.person") && !traced.contains("secret.person"));
    // and a mail's Debug form shows neither code nor link
    let debug = format!("{mail:?}");
    assert!(!debug.contains(&code_in(&mail)) && !debug.contains(&token_in(&mail)));
}

#[tokio::test]
async fn internal_errors_are_logged_and_say_nothing_to_the_client() {
    let log = captured_log();
    let app = TestApp::new();
    app.register("a@x.org", "alice").await;
    app.ctx
        .storage
        .with_conn(|c| {
            Ok::<_, ferrogram_storage::StorageError>(c.execute_batch("DROP TABLE sessions")?)
        })
        .unwrap();
    let err = app
        .call(
            "session.create",
            None,
            json!({"email": "a@x.org", "auth_key": b64(&auth_key("alice"))}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "internal");
    assert_eq!(err.message, "internal server error");
    let traced = text(&log);
    assert!(
        traced.contains("internal error") && traced.contains("no such table: sessions"),
        "{traced}"
    );
}

#[tokio::test]
async fn messages_reach_no_log() {
    use super::chat_support::{create_group, people, seal, send_body};
    let log = captured_log();
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol"]).await;
    let (alice, bob) = (&p[0], &p[1]);
    let chat = create_group(&app, alice, &[bob]).await;
    let envelope = seal(chat.id, alice, "m1", "a secret plan", &[alice, bob]);
    let mut secrets = vec![
        b64(envelope.body.as_slice()),
        b64(envelope.signature.as_slice()),
        b64(envelope.wraps[0].wrapped_key.as_slice()),
    ];
    let body = json!({"chat_id": chat.id, "client_msg_id": "m1", "envelope": envelope});
    app.ok("message.send", alice.token(), body).await;
    // refused ones too: wrong members, and a failure inside the writer
    let wrong = send_body(chat.id, alice, "m2", &[alice]);
    secrets.push(wrong["envelope"]["body"].as_str().unwrap().to_owned());
    app.err("message.send", alice.token(), wrong).await;
    app.ctx
        .storage
        .with_conn(|c| {
            Ok::<_, ferrogram_storage::StorageError>(c.execute_batch(
                "CREATE TRIGGER fail BEFORE INSERT ON chat_events \
                 BEGIN SELECT RAISE(ABORT, 'refused by test'); END;",
            )?)
        })
        .unwrap();
    let failing = send_body(chat.id, bob, "m3", &[alice, bob]);
    secrets.push(
        failing["envelope"]["signature"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    assert_eq!(
        app.err("message.send", bob.token(), failing).await,
        "unavailable"
    );

    let command_log = serde_json::to_string(&*app.log.entries.lock().unwrap()).unwrap();
    assert!(command_log.contains("message.send"));
    let traced = text(&log);
    assert!(traced.contains("refused by test"), "the capture works");
    for secret in &secrets {
        assert!(
            !command_log.contains(secret.as_str()),
            "command log leaks a message"
        );
        assert!(
            !traced.contains(secret.as_str()),
            "tracing output leaks a message"
        );
    }
}
