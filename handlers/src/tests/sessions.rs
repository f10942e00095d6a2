//! session.* and authentication of bearer tokens.

use super::support::{auth_key, b64, TestApp};
use ferrogram_core::command::DispatchEnv;
use ferrogram_core::ids::SessionId;
use ferrogram_core::proto::SessionList;
use serde_json::json;

async fn sessions_of(app: &TestApp, token: &str) -> SessionList {
    serde_json::from_value(app.ok("session.list", Some(token), json!({})).await).unwrap()
}

#[tokio::test]
async fn login_returns_a_token_the_session_the_account_and_the_sealed_keys() {
    let app = TestApp::new();
    let id = app.register("a@x.org", "alice").await;
    let login = app
        .login_with("A@x.org", &auth_key("alice"), "  laptop  ")
        .await;
    assert!(crate::secrets::is_well_formed_token(&login.token));
    assert_eq!(login.me.id, id);
    assert_eq!(login.me.handle, "alice");
    // unverified accounts can log in, and are told so
    assert!(!login.me.verified);
    assert_eq!(login.sealed_keys.as_slice(), b"sealed private keys");
    assert_eq!(login.session.device_name, "laptop");
    assert!(login.session.current);
    let ttl = login
        .session
        .expires_at
        .millis_since(login.session.created_at);
    assert_eq!(ttl, 3_600_000);

    let auth = app.ctx.authenticate(&login.token).await.unwrap();
    assert_eq!(auth.user_id, id);
    assert_eq!(auth.session_id, login.session.id);
    assert!(!auth.verified);

    // only the token's hash is stored
    let stored: Vec<u8> = app
        .ctx
        .storage
        .with_conn(|c| {
            Ok::<_, ferrogram_storage::StorageError>(c.query_row(
                "SELECT token_hash FROM sessions",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(stored, crate::secrets::sha256(login.token.as_bytes()));
}

#[tokio::test]
async fn wrong_key_and_unknown_email_fail_alike() {
    let app = TestApp::new();
    app.register("a@x.org", "alice").await;
    let wrong_key = app
        .call(
            "session.create",
            None,
            json!({"email": "a@x.org", "auth_key": b64(&[0; 32])}),
        )
        .await
        .unwrap_err();
    let unknown = app
        .call(
            "session.create",
            None,
            json!({"email": "ghost@x.org", "auth_key": b64(&auth_key("alice"))}),
        )
        .await
        .unwrap_err();
    let short_key = app
        .call(
            "session.create",
            None,
            json!({"email": "a@x.org", "auth_key": b64(&[0; 5])}),
        )
        .await
        .unwrap_err();
    assert_eq!(wrong_key.code.as_str(), "invalid_credentials");
    assert_eq!(wrong_key, unknown);
    assert_eq!(wrong_key, short_key);
    let long_device = json!({"email": "a@x.org", "auth_key": b64(&auth_key("alice")), "device_name": "d".repeat(65)});
    assert_eq!(
        app.err("session.create", None, long_device).await,
        "invalid_device_name"
    );
}

#[tokio::test]
async fn tokens_that_are_not_ours_are_unauthorized() {
    let app = TestApp::new();
    let (_, token) = app.signup("a@x.org", "alice").await;
    for bad in [
        "",
        "garbage",
        &crate::secrets::new_token(),
        &format!("{token}x"),
        &token[1..],
    ] {
        assert_eq!(
            app.err("me.get", Some(bad), json!({})).await,
            "unauthorized",
            "{bad}"
        );
    }
    assert_eq!(app.err("me.get", None, json!({})).await, "unauthorized");
    app.ok("me.get", Some(&token), json!({})).await;
}

#[tokio::test]
async fn expired_sessions_say_so() {
    let app = TestApp::with_settings(|s| s.session_ttl_secs = 0);
    let (_, token) = app.signup("a@x.org", "alice").await;
    assert_eq!(
        app.err("me.get", Some(&token), json!({})).await,
        "session_expired"
    );
    // and keep saying so, rather than turning into a bare unauthorized
    assert_eq!(
        app.err("me.get", Some(&token), json!({})).await,
        "session_expired"
    );
    // a public command still works with a stale token
    app.ok("server.info", Some(&token), json!({})).await;
}

#[tokio::test]
async fn list_marks_the_current_session_and_logout_ends_it() {
    let app = TestApp::new();
    let (_, phone) = app.signup("a@x.org", "alice").await;
    let laptop = app
        .login_with("a@x.org", &auth_key("alice"), "laptop")
        .await;

    let list = sessions_of(&app, &laptop.token).await;
    assert_eq!(list.sessions.len(), 2);
    let current: Vec<_> = list.sessions.iter().filter(|s| s.current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].id, laptop.session.id);
    assert_eq!(current[0].device_name, "laptop");

    app.ok("session.delete_current", Some(&laptop.token), json!({}))
        .await;
    assert_eq!(
        app.err("me.get", Some(&laptop.token), json!({})).await,
        "unauthorized"
    );
    let list = sessions_of(&app, &phone).await;
    assert_eq!(list.sessions.len(), 1);
    assert!(list.sessions[0].current);
}

#[tokio::test]
async fn revoke_ends_only_the_callers_own_sessions() {
    let app = TestApp::new();
    let (_, alice) = app.signup("a@x.org", "alice").await;
    let alice_laptop = app
        .login_with("a@x.org", &auth_key("alice"), "laptop")
        .await;
    let (_, bob) = app.signup("b@x.org", "bob").await;

    // bob knows the id of alice's laptop session: it does not help him
    let attempt = json!({ "id": alice_laptop.session.id });
    assert_eq!(
        app.err("session.revoke", Some(&bob), attempt.clone()).await,
        "session_not_found"
    );
    app.ok("me.get", Some(&alice_laptop.token), json!({})).await;

    app.ok("session.revoke", Some(&alice), attempt.clone())
        .await;
    assert_eq!(
        app.err("me.get", Some(&alice_laptop.token), json!({}))
            .await,
        "unauthorized"
    );
    assert_eq!(
        app.err("session.revoke", Some(&alice), attempt).await,
        "session_not_found"
    );
    let missing = json!({ "id": SessionId("0".repeat(32)) });
    assert_eq!(
        app.err("session.revoke", Some(&alice), missing).await,
        "session_not_found"
    );
    app.ok("me.get", Some(&alice), json!({})).await;
    app.ok("me.get", Some(&bob), json!({})).await;
}

#[tokio::test]
async fn revoke_others_keeps_the_current_session() {
    let app = TestApp::new();
    let (_, main) = app.signup("a@x.org", "alice").await;
    let mut others = Vec::new();
    for n in 0..3 {
        others.push(
            app.login_with("a@x.org", &auth_key("alice"), &format!("device {n}"))
                .await
                .token,
        );
    }
    let (_, bob) = app.signup("b@x.org", "bob").await;
    let resp = app
        .ok("session.revoke_others", Some(&main), json!({}))
        .await;
    assert_eq!(resp, json!({"revoked": 3}));
    for token in &others {
        assert_eq!(
            app.err("me.get", Some(token), json!({})).await,
            "unauthorized"
        );
    }
    app.ok("me.get", Some(&main), json!({})).await;
    app.ok("me.get", Some(&bob), json!({})).await;
    assert_eq!(sessions_of(&app, &main).await.sessions.len(), 1);
}

#[tokio::test]
async fn session_commands_need_a_session() {
    let app = TestApp::new();
    for command in [
        "session.list",
        "session.delete_current",
        "session.revoke_others",
    ] {
        assert_eq!(
            app.err(command, None, json!({})).await,
            "unauthorized",
            "{command}"
        );
    }
    let revoke = json!({"id": "0".repeat(32)});
    assert_eq!(
        app.err("session.revoke", None, revoke).await,
        "unauthorized"
    );
}
