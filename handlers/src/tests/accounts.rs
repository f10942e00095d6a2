//! account.register and account.prelogin.

use super::support::{auth_key, b64, code_in, public_keys, register_body, token_in, TestApp};
use ferrogram_core::b64::B64;
use ferrogram_core::proto::KdfParams;
use serde_json::{json, Value};

#[tokio::test]
async fn register_stores_the_account_and_mails_a_code_and_link() {
    let app = TestApp::new();
    let resp = app
        .ok(
            "account.register",
            None,
            register_body(" Alice@Example.ORG ", "Alice"),
        )
        .await;
    assert_eq!(resp["handle"], "alice");
    assert_eq!(resp["verified"], false);

    let mails = app.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.to, "alice@example.org");
    let code = code_in(mail);
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    let token = token_in(mail);
    assert!(crate::secrets::is_well_formed_token(&token));
    assert!(mail.html.as_deref().unwrap().contains(&token));
    assert!(!mail.subject.contains(&code));

    // the server keeps only hashes: neither the code, the token nor the
    // auth_key appears anywhere in the database file
    let (id, stored_hash, code_hash, token_hash) = app
        .ctx
        .storage
        .with_conn(|conn| {
            let (id, hash): (i64, String) =
                conn.query_row("SELECT id, auth_hash FROM users", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            let (code_hash, token_hash): (Vec<u8>, Vec<u8>) = conn.query_row(
                "SELECT code_hash, token_hash FROM email_verifications",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok::<_, ferrogram_storage::StorageError>((id, hash, code_hash, token_hash))
        })
        .unwrap();
    assert_eq!(resp["user_id"], id);
    assert!(stored_hash.starts_with("$argon2id$"));
    assert_eq!(token_hash, crate::secrets::sha256(token.as_bytes()));
    assert_ne!(code_hash, crate::secrets::sha256(code.as_bytes()));
    let file = std::fs::read(app.ctx.storage.path()).unwrap();
    let wal =
        std::fs::read(app.ctx.storage.path().with_extension("sqlite3-wal")).unwrap_or_default();
    for haystack in [&file, &wal] {
        for needle in [token.as_bytes(), &auth_key("alice")[..]] {
            assert!(!haystack.windows(needle.len()).any(|w| w == needle));
        }
    }
}

#[tokio::test]
async fn duplicate_email_or_handle_is_refused_case_insensitively() {
    let app = TestApp::new();
    app.register("a@x.org", "alice").await;
    let code = app
        .err("account.register", None, register_body("A@X.ORG", "other"))
        .await;
    assert_eq!(code, "email_taken");
    let code = app
        .err("account.register", None, register_body("b@x.org", "ALICE"))
        .await;
    assert_eq!(code, "handle_taken");
    // nothing was mailed for the refused attempts
    assert_eq!(app.mails().len(), 1);
}

#[tokio::test]
async fn every_invalid_field_has_its_own_code() {
    let app = TestApp::new();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("email", json!("not-an-email"), "invalid_email"),
        ("handle", json!("ab"), "invalid_handle"),
        ("handle", json!("12345"), "invalid_handle"),
        ("handle", json!("bad-handle"), "invalid_handle"),
        ("display_name", json!("   "), "invalid_display_name"),
        (
            "display_name",
            json!("x".repeat(65)),
            "invalid_display_name",
        ),
        ("auth_key", json!(b64(&[1; 31])), "invalid_key"),
        ("auth_key", json!(b64(&[1; 33])), "invalid_key"),
        ("kdf_salt", json!(b64(&[1; 15])), "invalid_kdf_params"),
        ("kdf_salt", json!(b64(&[1; 65])), "invalid_kdf_params"),
        (
            "kdf",
            json!(KdfParams {
                m_cost_kib: 1024,
                ..KdfParams::DEFAULT
            }),
            "invalid_kdf_params",
        ),
        (
            "kdf",
            json!(KdfParams {
                t_cost: KdfParams::MAX_T_COST + 1,
                ..KdfParams::DEFAULT
            }),
            "invalid_kdf_params",
        ),
        ("sealed_keys", json!(""), "invalid_key"),
        (
            "sealed_keys",
            json!(b64(&vec![0; 16 * 1024 + 1])),
            "invalid_key",
        ),
        (
            "public_keys",
            json!({"sign": b64(b"junk"), "enc": public_keys().enc}),
            "invalid_key",
        ),
        (
            // the keys' roles are checked: swapped keys are refused
            "public_keys",
            json!({"sign": public_keys().enc, "enc": public_keys().sign}),
            "invalid_key",
        ),
        ("auth_key", json!("not base64!"), "bad_request"),
    ];
    for (field, value, expected) in cases {
        let mut body = register_body("v@x.org", "valid_handle");
        body[field] = value;
        let code = app.err("account.register", None, body).await;
        assert_eq!(code, expected, "{field}");
    }
    let mut unknown_field = register_body("v@x.org", "valid_handle");
    unknown_field["password"] = json!("plain");
    assert_eq!(
        app.err("account.register", None, unknown_field).await,
        "bad_request"
    );
    assert!(app.mails().is_empty());
    // and the valid body still works
    app.register("v@x.org", "valid_handle").await;
}

#[tokio::test]
async fn closed_registration_is_refused() {
    let app = TestApp::with_settings(|s| s.registration_open = false);
    let code = app
        .err("account.register", None, register_body("a@x.org", "alice"))
        .await;
    assert_eq!(code, "registration_closed");
    let info = app.ok("server.info", None, json!({})).await;
    assert_eq!(info["registration_open"], false);
}

#[tokio::test]
async fn server_info_describes_the_server() {
    let app = TestApp::new();
    let info = app.ok("server.info", None, json!({})).await;
    assert_eq!(info["name"], "ferrogram");
    assert_eq!(info["protocol_version"], ferrogram_core::PROTOCOL_VERSION);
    assert_eq!(info["registration_open"], true);
    assert_eq!(info["min_kdf"], json!(KdfParams::DEFAULT));
    assert!(info["features"]
        .as_array()
        .unwrap()
        .contains(&json!("accounts")));
}

#[tokio::test]
async fn prelogin_returns_the_real_salt_and_params_of_an_account() {
    let app = TestApp::new();
    let mut body = register_body("a@x.org", "alice");
    let strong = KdfParams {
        m_cost_kib: 65_536,
        t_cost: 3,
        ..KdfParams::DEFAULT
    };
    body["kdf_salt"] = json!(b64(&[9; 32]));
    body["kdf"] = json!(strong);
    app.ok("account.register", None, body).await;
    let resp = app
        .ok("account.prelogin", None, json!({"email": "A@x.org"}))
        .await;
    assert_eq!(resp["salt"], b64(&[9; 32]));
    assert_eq!(resp["kdf"], json!(strong));
}

async fn prelogin(app: &TestApp, email: &str) -> Value {
    app.ok("account.prelogin", None, json!({ "email": email }))
        .await
}

#[tokio::test]
async fn prelogin_fake_salt_is_stable_per_email_and_looks_real() {
    let app = TestApp::new();
    let first = prelogin(&app, "ghost@x.org").await;
    let again = prelogin(&app, "GHOST@x.org").await;
    let other = prelogin(&app, "other-ghost@x.org").await;
    assert_eq!(first, again);
    assert_ne!(first["salt"], other["salt"]);
    let salt: B64 = serde_json::from_value(first["salt"].clone()).unwrap();
    assert_eq!(salt.len(), 16, "same length as a client salt");
    assert_eq!(first["kdf"], json!(KdfParams::DEFAULT));

    // the same secret after a "restart" (new database, new process state)
    // gives the same salt; another server's secret gives another
    assert_eq!(prelogin(&TestApp::new(), "ghost@x.org").await, first);
    let elsewhere = TestApp::with_settings(|s| s.server_secret = std::sync::Arc::from(vec![1; 32]));
    assert_ne!(
        prelogin(&elsewhere, "ghost@x.org").await["salt"],
        first["salt"]
    );

    assert_eq!(
        app.err("account.prelogin", None, json!({"email": "nope"}))
            .await,
        "invalid_email"
    );
}

#[tokio::test]
async fn bench_mode_creates_verified_accounts_without_mail_and_only_when_on() {
    let app = TestApp::with_settings(|s| s.bench_accounts = true);
    let resp = app
        .ok(
            "account.register",
            None,
            register_body("bench@example.org", "benchuser"),
        )
        .await;
    assert_eq!(resp["verified"], true);
    assert!(app.mails().is_empty(), "no verification mail in bench mode");
    let verified: Option<i64> = app
        .ctx
        .storage
        .with_conn(|conn| {
            conn.query_row("SELECT verified_at FROM users", [], |r| r.get(0))
                .map_err(ferrogram_storage::StorageError::from)
        })
        .unwrap();
    assert!(verified.is_some());
    // off (the default): the usual unverified account and its mail
    let app = TestApp::new();
    let resp = app
        .ok(
            "account.register",
            None,
            register_body("plain@example.org", "plainuser"),
        )
        .await;
    assert_eq!(resp["verified"], false);
    assert_eq!(app.mails().len(), 1);
}
