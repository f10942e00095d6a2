//! The command log: one JSON line per command with the agreed fields, and
//! never a secret, after a whole account life cycle.

use std::collections::HashMap;

use base64::Engine as _;
use ferrogram_client::proto::{LoginResponse, UpdateProfileRequest};
use ferrogram_client::Method;
use ferrogram_core::crypto;
use serde_json::{json, Value};

use ferrogram_test_support::{identity_b, spawn_app, TestApp, TestUser, TEST_KDF};

const FIELDS: [&str; 8] = [
    "time",
    "request_id",
    "ip",
    "user_id",
    "session_id",
    "command",
    "outcome",
    "duration_us",
];

/// A secret and the forms it could appear in.
fn forms(bytes: &[u8]) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = vec![
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        hex_lower(bytes),
        hex_lower(bytes).to_uppercase(),
    ];
    // A long value may be logged in part: look for a slice of it too.
    for text in out.clone() {
        if text.len() > 48 {
            out.push(text[text.len() / 2 - 16..text.len() / 2 + 16].to_owned());
        }
    }
    out
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[tokio::test]
async fn one_line_per_command_and_no_secret_in_it() {
    let app = spawn_app().await;
    let log_path = app.config.command_log_path().expect("command log enabled");
    let alice = TestUser::new("logged");
    let bob = TestUser::new("loggedb");
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut keep = |what: &str, value: String| secrets.push((what.to_owned(), value));
    // Count the commands this test sends, by name.
    let mut sent: HashMap<&str, usize> = HashMap::new();
    let mut count = |name: &'static str, n: usize| *sent.entry(name).or_default() += n;

    count("server.info", 1); // the client's check when it connected
    app.register(&alice).await;
    count("account.register", 1);
    let mail = app.mail_to(&alice.email).await;
    let code = mail.code().unwrap();
    keep("alice's code", code.clone());
    keep("alice's link token", mail.link_token().unwrap());
    keep("mail body", "Welcome to Ferrogram".into());
    keep("mail body line", "Your verification code is".into());
    app.client.verify_code(&alice.email, &code).await.unwrap();
    count("account.verify", 1);

    app.client.register(bob.params(identity_b())).await.unwrap();
    count("account.register", 1);
    let bob_token = app.mail_to(&bob.email).await.link_token().unwrap();
    keep("bob's link token", bob_token.clone());
    let (status, _) = app
        .client
        .raw_bytes(
            Method::GET,
            &format!("/verify?token={bob_token}"),
            None,
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    count("account.verify", 1);

    // Log in by hand once, to see the auth key and the sealed blob that went
    // over the wire.
    let pre = app.client.prelogin(&alice.email).await.unwrap();
    count("account.prelogin", 1);
    let keys =
        crypto::derive_account_keys(alice.password.as_bytes(), &pre.salt.0, &TEST_KDF).unwrap();
    for form in forms(keys.auth_key.as_bytes()) {
        keep("alice's auth key", form);
    }
    let (status, answer) = app
        .client
        .raw(
            Method::POST,
            "/api/v1/sessions",
            Some(json!({"email": alice.email, "auth_key": keys.auth_key.to_b64()})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    count("session.create", 1);
    let manual: LoginResponse = serde_json::from_value(answer).unwrap();
    keep("manual token", manual.token.clone());
    for form in forms(&manual.sealed_keys.0) {
        keep("sealed keys", form);
    }

    let session = app.login(&alice).await;
    count("account.prelogin", 1);
    count("session.create", 1);
    keep("token", session.token().to_owned());
    keep("alice's password", alice.password.clone());
    keep("bob's password", bob.password.clone());
    session.me().await.unwrap();
    count("me.get", 1);
    session
        .update_profile(UpdateProfileRequest {
            bio: Some("hello there".into()),
            ..UpdateProfileRequest::default()
        })
        .await
        .unwrap();
    count("me.update", 1);
    session.search_users("logged", None).await.unwrap();
    count("user.search", 1);
    let me = session.cached_me();
    session.get_user(&alice.handle).await.unwrap();
    count("user.get", 1);
    session.user_keys(me.id).await.unwrap();
    count("user.keys", 1);
    session.sessions().await.unwrap();
    count("session.list", 1);
    let bob_session = app.login(&bob).await;
    count("account.prelogin", 1);
    count("session.create", 1);
    keep("bob's token", bob_session.token().to_owned());
    bob_session.logout().await.unwrap();
    count("session.delete_current", 1);

    let new_password = "a new and secret passphrase";
    keep("new password", new_password.to_owned());
    // Failures are logged too (without their input).
    let (status, _) = app
        .client
        .raw(
            Method::GET,
            "/api/v1/me",
            None,
            Some("forged-token-value-1234567890"),
        )
        .await
        .unwrap();
    assert_eq!(status, 401);
    keep("forged token", "forged-token-value-1234567890".into());
    count("me.get", 1);
    session
        .change_password(&alice.password, new_password)
        .await
        .unwrap();
    count("me.change_password", 1);
    let manual_token = manual.token.clone();
    let (status, _) = app
        .client
        .raw(Method::GET, "/api/v1/me", None, Some(&manual_token))
        .await
        .unwrap();
    assert_eq!(status, 401, "revoked by the password change");
    count("me.get", 1);
    session.revoke_other_sessions().await.unwrap();
    count("session.revoke_others", 1);
    session.delete_account(new_password).await.unwrap();
    count("me.delete", 1);
    let total: usize = sent.values().sum();

    // Stopping the server flushes the log.
    let _dir = stop(app);
    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for line in &lines {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let object = entry.as_object().expect("a JSON object per line");
        for field in FIELDS {
            assert!(object.contains_key(field), "{field} missing in {line}");
        }
        assert!(entry["duration_us"].is_u64(), "{line}");
        assert!(
            !entry["request_id"].as_str().unwrap_or("").is_empty(),
            "{line}"
        );
        assert!(entry["outcome"].is_string(), "{line}");
        *seen
            .entry(entry["command"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for (command, n) in &sent {
        assert_eq!(seen.get(*command), Some(n), "{command}: {seen:?}");
    }
    assert_eq!(lines.len(), total, "{seen:?}");
    // Outcomes name success or the error code; user and session are filled
    // in for authenticated commands.
    let entries: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outcomes = |command: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e["command"] == command)
            .map(|e| e["outcome"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(outcomes("me.get"), ["ok", "unauthorized", "unauthorized"]);
    assert!(outcomes("session.create").iter().all(|o| o == "ok"));
    let update = entries
        .iter()
        .find(|e| e["command"] == "me.update")
        .unwrap();
    assert_eq!(update["user_id"], json!(me.id));
    assert!(update["session_id"].is_string(), "{update}");

    // Times and durations are digits that a 6-digit code could match by
    // chance: scan everything but them (they are checked to be numbers and
    // timestamps above).
    let scanned: String = entries
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let object = e.as_object_mut().unwrap();
            object.remove("time");
            object.remove("duration_us");
            e.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    for entry in &entries {
        let time = entry["time"].as_str().unwrap();
        assert!(
            time.len() >= 20 && time.starts_with("20") && time.contains('T'),
            "{time}"
        );
    }
    for (what, secret) in &secrets {
        assert!(
            !scanned.contains(secret.as_str()),
            "{what} is in the command log"
        );
    }
}

/// Stops the server (flushing the command log); the data folder lives on as
/// long as the returned handle.
fn stop(app: TestApp) -> std::sync::Arc<tempfile::TempDir> {
    let TestApp { server, dir, .. } = app;
    server.stop();
    dir
}
