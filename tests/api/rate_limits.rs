//! Rate limits per client IP and per account: 429 `rate_limited` with a
//! `retry_after`, per command class.

use ferrogram_client::{ErrorCode, Method};
use ferrogram_core::b64::B64;
use ferrogram_core::ratelimit::{Rate, RateRule};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp, TestUser};

const STRICT: Rate = Rate::new(3, 3600);
const LOOSE: Rate = Rate::new(100_000, 1);

fn strict_per_ip() -> RateRule {
    RateRule {
        per_ip: STRICT,
        per_account: LOOSE,
    }
}

fn strict_per_account() -> RateRule {
    RateRule {
        per_ip: LOOSE,
        per_account: STRICT,
    }
}

async fn login_attempt(app: &TestApp, email: &str) -> (u16, Value) {
    app.client
        .raw(
            Method::POST,
            "/api/v1/sessions",
            Some(json!({"email": email, "auth_key": B64(vec![9; 32])})),
            None,
        )
        .await
        .unwrap()
}

fn assert_limited(status: u16, answer: &Value) {
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["code"], "rate_limited");
    let retry_after = answer["error"]["retry_after"]
        .as_u64()
        .expect("retry_after");
    assert!((1..=3600).contains(&retry_after), "{answer}");
}

#[tokio::test]
async fn logins_are_limited_per_ip() {
    let app = spawn_app_with(|c| c.limits.rate_limits.login = strict_per_ip()).await;
    for i in 0..3 {
        let (status, answer) = login_attempt(&app, &format!("who{i}@example.org")).await;
        assert_eq!(status, 401, "attempt {i}: {answer}");
    }
    let (status, answer) = login_attempt(&app, "who9@example.org").await;
    assert_limited(status, &answer);
    // Other classes are not affected.
    assert!(app.client.prelogin("who9@example.org").await.is_ok());
}

#[tokio::test]
async fn logins_are_limited_per_account_even_with_the_right_password() {
    let app = spawn_app_with(|c| c.limits.rate_limits.login = strict_per_account()).await;
    let user = TestUser::new("limited");
    app.register(&user).await;
    for _ in 0..3 {
        let (status, answer) = login_attempt(&app, &user.email).await;
        assert_eq!(status, 401, "{answer}");
    }
    let (status, answer) = login_attempt(&app, &user.email).await;
    assert_limited(status, &answer);
    // Also with the real password, through the client library.
    let err = app
        .client
        .login(&user.email, &user.password, None)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Some(ErrorCode::RateLimited), "{err}");
    assert!(err.retry_after().is_some_and(|s| s >= 1), "{err:?}");
    // The email is the account key, whatever its case.
    let (status, answer) = login_attempt(&app, &user.email.to_uppercase()).await;
    assert_limited(status, &answer);
    // Another account from the same IP is fine.
    let (status, answer) = login_attempt(&app, "someone.else@example.org").await;
    assert_eq!(status, 401, "{answer}");
}

#[tokio::test]
async fn prelogin_is_limited_per_ip_and_per_account() {
    let app = spawn_app_with(|c| c.limits.rate_limits.prelogin = strict_per_account()).await;
    for _ in 0..3 {
        app.client.prelogin("same@example.org").await.unwrap();
    }
    let err = app.client.prelogin("same@example.org").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::RateLimited));
    assert!(app.client.prelogin("different@example.org").await.is_ok());

    let app = spawn_app_with(|c| c.limits.rate_limits.prelogin = strict_per_ip()).await;
    for i in 0..3 {
        app.client
            .prelogin(&format!("p{i}@example.org"))
            .await
            .unwrap();
    }
    let (status, answer) = app
        .client
        .raw(
            Method::GET,
            "/api/v1/prelogin?email=p9@example.org",
            None,
            None,
        )
        .await
        .unwrap();
    assert_limited(status, &answer);
}

#[tokio::test]
async fn registrations_are_limited_per_ip() {
    let app = spawn_app_with(|c| c.limits.rate_limits.register = strict_per_ip()).await;
    for _ in 0..3 {
        app.register(&TestUser::new("reg")).await;
    }
    let err = app
        .client
        .register(TestUser::new("reg").params(crate::helpers::identity_a()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::RateLimited), "{err}");
}

#[tokio::test]
async fn verification_codes_cannot_be_brute_forced() {
    let app = spawn_app_with(|c| {
        c.limits.rate_limits.verify = strict_per_account();
        c.security.max_code_attempts = 100;
    })
    .await;
    let user = TestUser::new("brute");
    app.register(&user).await;
    let code = app.mail_to(&user.email).await.code().unwrap();
    let wrong = if code == "111111" { "222222" } else { "111111" };
    for _ in 0..3 {
        let err = app
            .client
            .verify_code(&user.email, wrong)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidCode));
    }
    let err = app
        .client
        .verify_code(&user.email, &code)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(ErrorCode::RateLimited),
        "even the right code waits"
    );
}

#[tokio::test]
async fn resends_are_limited_per_ip() {
    let app = spawn_app_with(|c| {
        c.limits.rate_limits.resend = strict_per_ip();
        c.security.resend_cooldown_secs = 0;
    })
    .await;
    for i in 0..3 {
        app.client
            .resend_verification(&format!("r{i}@example.org"))
            .await
            .unwrap();
    }
    let err = app
        .client
        .resend_verification("r9@example.org")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::RateLimited));
}
