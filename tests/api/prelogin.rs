//! Pre-login answers the same shape for every email, with a stable fake salt
//! for unknown ones, so it does not reveal who has an account.

use ferrogram_client::proto::PreloginResponse;
use ferrogram_client::Method;
use ferrogram_core::b64::B64;
use serde_json::{json, Value};

use ferrogram_test_support::{identity_a, spawn_app, TestApp, TestUser, TEST_KDF};

async fn prelogin_json(app: &TestApp, email: &str) -> Value {
    let (status, answer) = app
        .client
        .raw(
            Method::GET,
            &format!("/api/v1/prelogin?email={email}"),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    answer
}

fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn fake_salts_are_stable_per_email_and_look_real() {
    let app = spawn_app().await;
    let ghost = "ghost@example.org";
    let first = app.client.prelogin(ghost).await.unwrap();
    let second = app.client.prelogin(ghost).await.unwrap();
    assert_eq!(first, second, "same email, same answer");
    // Emails are normalised before hashing.
    assert_eq!(
        app.client.prelogin(" Ghost@EXAMPLE.org ").await.unwrap(),
        first
    );
    let other = app.client.prelogin("phantom@example.org").await.unwrap();
    assert_ne!(other.salt, first.salt, "different emails, different salts");

    // A real account: its own salt, in the same shape and length, with the
    // same parameters as the fakes.
    let user = TestUser::new("real");
    let salt = B64((0..16).map(|i| 0xA0 ^ i).collect());
    let body = json!({
        "email": user.email,
        "handle": user.handle,
        "display_name": user.display_name,
        "auth_key": B64(vec![1; 32]),
        "kdf_salt": salt,
        "kdf": TEST_KDF,
        "public_keys": identity_a().public_keys(),
        "sealed_keys": B64(vec![3; 600]),
    });
    let (status, answer) = app
        .client
        .raw(Method::POST, "/api/v1/accounts", Some(body), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    let real = app.client.prelogin(&user.email).await.unwrap();
    assert_eq!(real.salt, salt);
    assert_eq!(real.kdf, TEST_KDF);
    assert_eq!(
        first.kdf, real.kdf,
        "fakes carry the parameters of real accounts"
    );
    assert_eq!(first.salt.len(), real.salt.len());

    let real_json = prelogin_json(&app, &user.email).await;
    let fake_json = prelogin_json(&app, ghost).await;
    assert_eq!(keys_of(&real_json), keys_of(&fake_json));
    assert_eq!(keys_of(&real_json["kdf"]), keys_of(&fake_json["kdf"]));
    assert_eq!(
        real_json["salt"].as_str().unwrap().len(),
        fake_json["salt"].as_str().unwrap().len()
    );
}

#[tokio::test]
async fn fake_salts_survive_a_restart_and_depend_on_the_server_secret() {
    let app = spawn_app().await;
    let emails = ["nobody@example.org", "no.one@example.net"];
    let mut before: Vec<PreloginResponse> = Vec::new();
    for email in emails {
        before.push(app.client.prelogin(email).await.unwrap());
    }
    let user = TestUser::new("persist");
    app.register(&user).await;
    let real_before = app.client.prelogin(&user.email).await.unwrap();

    let secret_path = app.config.server_secret_path();
    let secret = std::fs::read(&secret_path).unwrap();
    let app = app.restart().await;
    assert_eq!(std::fs::read(&secret_path).unwrap(), secret);
    for (email, old) in emails.iter().zip(&before) {
        assert_eq!(&app.client.prelogin(email).await.unwrap(), old, "{email}");
    }
    assert_eq!(app.client.prelogin(&user.email).await.unwrap(), real_before);
    // The account itself survived too.
    app.login(&user).await;

    // Another server (another secret) gives other fake salts.
    let elsewhere = spawn_app().await;
    let there = elsewhere.client.prelogin(emails[0]).await.unwrap();
    assert_ne!(there.salt, before[0].salt);
}

#[tokio::test]
async fn a_password_change_gives_a_new_real_salt() {
    let app = spawn_app().await;
    let user = TestUser::new("newsalt");
    app.register(&user).await;
    let before = app.client.prelogin(&user.email).await.unwrap();
    let session = app.login(&user).await;
    session
        .change_password(&user.password, "the brand new password")
        .await
        .unwrap();
    let after = app.client.prelogin(&user.email).await.unwrap();
    assert_ne!(before.salt, after.salt);
    assert_eq!(after.salt.len(), 16);
}

#[tokio::test]
async fn a_deleted_account_gets_a_stable_fake_salt() {
    let app = spawn_app().await;
    let user = TestUser::new("gone");
    app.register(&user).await;
    let real = app.client.prelogin(&user.email).await.unwrap();
    let session = app.login(&user).await;
    session.delete_account(&user.password).await.unwrap();
    let fake = app.client.prelogin(&user.email).await.unwrap();
    assert_ne!(fake.salt, real.salt);
    assert_eq!(app.client.prelogin(&user.email).await.unwrap(), fake);
}
