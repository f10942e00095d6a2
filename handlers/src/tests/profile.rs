//! me.* and user.*.

use super::support::{auth_key, b64, register_body, TestApp};
use ferrogram_core::crypto::fingerprint::fingerprint;
use ferrogram_core::proto::{KdfParams, Me, UserList};
use serde_json::{json, Value};

fn handles(list: &Value) -> Vec<String> {
    let list: UserList = serde_json::from_value(list.clone()).unwrap();
    list.users.into_iter().map(|u| u.handle).collect()
}

#[tokio::test]
async fn me_shows_the_account_with_its_fingerprint() {
    let app = TestApp::new();
    let (id, token) = app.signup("a@x.org", "alice").await;
    let me: Me = serde_json::from_value(app.ok("me.get", Some(&token), json!({})).await).unwrap();
    assert_eq!(me.id, id);
    assert_eq!(me.email, "a@x.org");
    assert_eq!(me.display_name, "Display alice");
    assert_eq!(me.bio, "");
    assert!(me.verified);
    assert_eq!(me.public_keys, super::support::public_keys());
    assert_eq!(me.fingerprint, fingerprint(&me.public_keys));
}

#[tokio::test]
async fn me_update_changes_only_the_given_fields() {
    let app = TestApp::new();
    let (_, token) = app.signup("a@x.org", "alice").await;
    app.signup("b@x.org", "bob").await;

    let me = app
        .ok("me.update", Some(&token), json!({"bio": "  likes\ttea\n "}))
        .await;
    assert_eq!(
        (me["bio"].as_str(), me["handle"].as_str()),
        (Some("likes\ttea"), Some("alice"))
    );
    let me = app
        .ok(
            "me.update",
            Some(&token),
            json!({"display_name": "Alice A.", "handle": "Alicia"}),
        )
        .await;
    assert_eq!(me["display_name"], "Alice A.");
    assert_eq!(me["handle"], "alicia");
    assert_eq!(me["bio"], "likes\ttea");
    // keeping one's own handle is fine; taking someone else's is not
    app.ok("me.update", Some(&token), json!({"handle": "alicia"}))
        .await;
    assert_eq!(
        app.err("me.update", Some(&token), json!({"handle": "BOB"}))
            .await,
        "handle_taken"
    );
    // an empty update changes nothing
    let same = app.ok("me.update", Some(&token), json!({})).await;
    assert_eq!(same, app.ok("me.get", Some(&token), json!({})).await);

    for (body, code) in [
        (json!({"handle": "no"}), "invalid_handle"),
        (json!({"display_name": ""}), "invalid_display_name"),
        (json!({"bio": "x".repeat(501)}), "invalid_bio"),
        (json!({"email": "new@x.org"}), "bad_request"),
    ] {
        assert_eq!(
            app.err("me.update", Some(&token), body.clone()).await,
            code,
            "{body}"
        );
    }
    assert_eq!(
        app.err("me.update", None, json!({"bio": "x"})).await,
        "unauthorized"
    );
}

#[tokio::test]
async fn user_lookups_need_a_session() {
    let app = TestApp::new();
    let (id, _) = app.signup("a@x.org", "alice").await;
    assert_eq!(
        app.err("user.get", None, json!({"handle": "alice"})).await,
        "unauthorized"
    );
    assert_eq!(
        app.err("user.search", None, json!({"query": "a"})).await,
        "unauthorized"
    );
    assert_eq!(
        app.err("user.keys", None, json!({ "id": id })).await,
        "unauthorized"
    );
}

#[tokio::test]
async fn user_get_and_keys() {
    let app = TestApp::new();
    let (alice, _) = app.signup("a@x.org", "alice").await;
    let (_, bob) = app.signup("b@x.org", "bob").await;
    let profile = app
        .ok("user.get", Some(&bob), json!({"handle": "Alice"}))
        .await;
    assert_eq!(
        profile,
        json!({"id": alice, "handle": "alice", "display_name": "Display alice", "bio": ""})
    );
    assert!(profile.get("email").is_none(), "others never see the email");
    assert_eq!(
        app.err("user.get", Some(&bob), json!({"handle": "nobody"}))
            .await,
        "user_not_found"
    );
    assert_eq!(
        app.err("user.get", Some(&bob), json!({"handle": "x"}))
            .await,
        "invalid_handle"
    );

    let keys = app
        .ok("user.keys", Some(&bob), json!({ "id": alice }))
        .await;
    assert_eq!(keys["user_id"], json!(alice));
    assert_eq!(keys["public_keys"], json!(super::support::public_keys()));
    assert_eq!(
        keys["fingerprint"],
        fingerprint(&super::support::public_keys())
    );
    assert_eq!(
        app.err("user.keys", Some(&bob), json!({"id": 999_999}))
            .await,
        "user_not_found"
    );
}

#[tokio::test]
async fn user_search_by_prefix_with_limits() {
    let app = TestApp::new();
    let (_, token) = app.signup("me@x.org", "searcher").await;
    for n in 0..55 {
        app.register(&format!("u{n}@x.org"), &format!("user_{n:02}"))
            .await;
    }
    let mut body = register_body("z@x.org", "zed");
    body["display_name"] = json!("Userina");
    app.ok("account.register", None, body).await;

    let default = app
        .ok("user.search", Some(&token), json!({"query": "user"}))
        .await;
    assert_eq!(handles(&default).len(), 20);
    assert_eq!(handles(&default)[0], "user_00");
    let capped = app
        .ok(
            "user.search",
            Some(&token),
            json!({"query": "user", "limit": 500}),
        )
        .await;
    assert_eq!(handles(&capped).len(), 50);
    let few = app
        .ok(
            "user.search",
            Some(&token),
            json!({"query": "USER_1", "limit": 3}),
        )
        .await;
    assert_eq!(handles(&few), ["user_10", "user_11", "user_12"]);
    // display names match too
    let by_name = app
        .ok("user.search", Some(&token), json!({"query": "userin"}))
        .await;
    assert_eq!(handles(&by_name), ["zed"]);
    // LIKE wildcards in the query are literal
    let wild = app
        .ok("user.search", Some(&token), json!({"query": "%"}))
        .await;
    assert!(handles(&wild).is_empty());
    let underscore = app
        .ok("user.search", Some(&token), json!({"query": "user_"}))
        .await;
    assert_eq!(handles(&underscore).len(), 20);
    let none = app
        .ok("user.search", Some(&token), json!({"query": "userx"}))
        .await;
    assert!(handles(&none).is_empty());

    for query in ["", "   ", &"q".repeat(65)] {
        let body = json!({ "query": query });
        assert_eq!(
            app.err("user.search", Some(&token), body).await,
            "bad_request",
            "{query:?}"
        );
    }
}

#[tokio::test]
async fn change_password_swaps_the_material_and_ends_other_sessions() {
    let app = TestApp::new();
    let (_, main) = app.signup("a@x.org", "alice").await;
    let other = app.login("a@x.org", "alice").await.token;
    let new_key = [0x55; 32];
    let new_kdf = KdfParams {
        m_cost_kib: 32_768,
        ..KdfParams::DEFAULT
    };
    let change = json!({
        "old_auth_key": b64(&auth_key("alice")),
        "new_auth_key": b64(&new_key),
        "new_kdf_salt": b64(&[3; 24]),
        "new_kdf": new_kdf,
        "sealed_keys": b64(b"resealed"),
    });

    let mut wrong = change.clone();
    wrong["old_auth_key"] = json!(b64(&[0; 32]));
    assert_eq!(
        app.err("me.change_password", Some(&main), wrong).await,
        "invalid_credentials"
    );
    let mut weak = change.clone();
    weak["new_kdf"] = json!(KdfParams {
        m_cost_kib: 8,
        ..KdfParams::DEFAULT
    });
    assert_eq!(
        app.err("me.change_password", Some(&main), weak).await,
        "invalid_kdf_params"
    );
    let mut short = change.clone();
    short["new_auth_key"] = json!(b64(&[1; 16]));
    assert_eq!(
        app.err("me.change_password", Some(&main), short).await,
        "invalid_key"
    );
    // failed attempts changed nothing
    app.ok("me.get", Some(&other), json!({})).await;

    let resp = app
        .ok("me.change_password", Some(&main), change.clone())
        .await;
    assert_eq!(resp, json!({"revoked": 1}));
    assert_eq!(
        app.err("me.get", Some(&other), json!({})).await,
        "unauthorized"
    );
    app.ok("me.get", Some(&main), json!({})).await;

    // only the new key logs in, and pre-login hands out the new salt
    let old_login = json!({"email": "a@x.org", "auth_key": b64(&auth_key("alice"))});
    assert_eq!(
        app.err("session.create", None, old_login).await,
        "invalid_credentials"
    );
    let login = app.login_with("a@x.org", &new_key, "new").await;
    assert_eq!(login.sealed_keys.as_slice(), b"resealed");
    let pre = app
        .ok("account.prelogin", None, json!({"email": "a@x.org"}))
        .await;
    assert_eq!(pre, json!({"salt": b64(&[3; 24]), "kdf": new_kdf}));
    // the old key cannot change it again
    assert_eq!(
        app.err("me.change_password", Some(&main), change).await,
        "invalid_credentials"
    );
}

#[tokio::test]
async fn delete_account_removes_everything() {
    let app = TestApp::new();
    let (id, token) = app.signup("a@x.org", "alice").await;
    let second = app.login("a@x.org", "alice").await.token;
    let (_, bob) = app.signup("b@x.org", "bob").await;

    let wrong = json!({"auth_key": b64(&[0; 32])});
    assert_eq!(
        app.err("me.delete", Some(&token), wrong).await,
        "invalid_credentials"
    );
    app.ok("me.get", Some(&token), json!({})).await;

    app.ok(
        "me.delete",
        Some(&token),
        json!({"auth_key": b64(&auth_key("alice"))}),
    )
    .await;
    for t in [&token, &second] {
        assert_eq!(app.err("me.get", Some(t), json!({})).await, "unauthorized");
    }
    let login = json!({"email": "a@x.org", "auth_key": b64(&auth_key("alice"))});
    assert_eq!(
        app.err("session.create", None, login).await,
        "invalid_credentials"
    );
    assert_eq!(
        app.err("user.keys", Some(&bob), json!({ "id": id })).await,
        "user_not_found"
    );
    let left: i64 = app
        .ctx
        .storage
        .with_conn(|c| {
            Ok::<_, ferrogram_storage::StorageError>(c.query_row(
                "SELECT (SELECT count(*) FROM sessions WHERE user_id = ?1) + \
                 (SELECT count(*) FROM email_verifications WHERE user_id = ?1)",
                [id.0],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(left, 0);
    // email and handle are free again, under a new id
    let again = app.register("a@x.org", "alice").await;
    assert!(again.0 > id.0);
}
