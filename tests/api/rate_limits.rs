//! Rate limits per client IP and per account: 429 `rate_limited` with a
//! `retry_after`, per command class; failed proofs (wrong password, wrong
//! code) back off the (account, address) pair and the address, never the
//! account, so the owner logs in from another address. Loopback has many
//! addresses: a second client connects from 127.0.0.2.

use ferrogram_client::{Client, ClientOptions, ErrorCode, Method};
use ferrogram_core::b64::B64;
use ferrogram_core::ratelimit::{FailureRule, Rate, RateRule};
use ferrogram_server::config::Config;
use serde_json::{json, Value};

use ferrogram_test_support::{identity_a, spawn_app_with, TestApp, TestUser, TEST_KDF};

const STRICT: Rate = Rate::new(3, 3600);
const LOOSE: Rate = Rate::new(100_000, 1);

fn strict_per_ip() -> RateRule {
    RateRule::both(STRICT, LOOSE)
}

/// Three failures per (account, address) then a minute's wait; an address
/// may fail `per_ip` times in all.
fn three_strikes(per_ip: u32) -> RateRule {
    RateRule::per_ip(LOOSE).with_failures(FailureRule {
        per_account_ip: 3,
        per_ip,
        backoff_secs: 60,
        max_backoff_secs: 900,
        forget_after_secs: 3600,
    })
}

/// A client of `app` connecting from another loopback address.
async fn client_from(app: &TestApp, ip: &str) -> Client {
    let options = ClientOptions {
        kdf_override: Some(TEST_KDF),
        local_address: Some(ip.parse().unwrap()),
        ..ClientOptions::default()
    };
    Client::connect_with(app.client.addr().clone(), options)
        .await
        .expect("client connects")
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
async fn a_stranger_failing_logins_never_locks_the_owner_out() {
    let app = spawn_app_with(|c| c.limits.rate_limits.login = three_strikes(100)).await;
    let user = TestUser::new("victim");
    app.register(&user).await;
    // The attacker (127.0.0.1) fails three times, then waits ...
    for _ in 0..3 {
        let (status, answer) = login_attempt(&app, &user.email).await;
        assert_eq!(status, 401, "{answer}");
    }
    for _ in 0..20 {
        let (status, answer) = login_attempt(&app, &user.email.to_uppercase()).await;
        assert_limited(status, &answer);
    }
    // ... even with the right password: the pair is backing off.
    let err = app
        .client
        .login(&user.email, &user.password, None)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Some(ErrorCode::RateLimited), "{err}");
    assert!(err.retry_after().is_some_and(|s| s >= 50), "{err:?}");
    // The owner, from another address, logs in at once.
    let owner = client_from(&app, "127.0.0.2").await;
    let session = owner
        .login(&user.email, &user.password, None)
        .await
        .expect("the owner logs in from home");
    assert_eq!(session.cached_me().email, user.email);
    // The attacker's address may still fail for other accounts.
    let (status, answer) = login_attempt(&app, "someone.else@example.org").await;
    assert_eq!(status, 401, "{answer}");
}

#[tokio::test]
async fn an_address_failing_across_accounts_is_throttled() {
    let app = spawn_app_with(|c| c.limits.rate_limits.login = three_strikes(5)).await;
    let user = TestUser::new("bystander");
    app.register(&user).await;
    for i in 0..5 {
        let (status, answer) = login_attempt(&app, &format!("guess{i}@example.org")).await;
        assert_eq!(status, 401, "{answer}");
    }
    let (status, answer) = login_attempt(&app, "guess9@example.org").await;
    assert_limited(status, &answer);
    let err = app
        .client
        .login(&user.email, &user.password, None)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Some(ErrorCode::RateLimited), "{err}");
    // nobody else is slowed down
    let other = client_from(&app, "127.0.0.3").await;
    other
        .login(&user.email, &user.password, None)
        .await
        .expect("another address logs in");
}

#[tokio::test]
async fn prelogin_is_limited_per_ip_only() {
    let app = spawn_app_with(|c| {
        c.limits.rate_limits.prelogin = Config::embedded_defaults().limits.rate_limits.prelogin;
        c.limits.rate_limits.prelogin.per_ip = Some(STRICT);
    })
    .await;
    for _ in 0..3 {
        app.client.prelogin("same@example.org").await.unwrap();
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
    // No limit per email: the flood from one address does not stop the
    // owner's log-in elsewhere.
    let owner = client_from(&app, "127.0.0.2").await;
    owner.prelogin("same@example.org").await.unwrap();
}

#[tokio::test]
async fn registrations_are_limited_per_ip() {
    let app = spawn_app_with(|c| c.limits.rate_limits.register = strict_per_ip()).await;
    for _ in 0..3 {
        app.register(&TestUser::new("reg")).await;
    }
    let err = app
        .client
        .register(TestUser::new("reg").params(identity_a()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::RateLimited), "{err}");
}

#[tokio::test]
async fn a_stranger_cannot_void_someone_elses_code() {
    let app = spawn_app_with(|c| {
        c.limits.rate_limits.verify = three_strikes(100);
        c.security.max_code_attempts = 200;
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
    for _ in 0..20 {
        let err = app
            .client
            .verify_code(&user.email, wrong)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::RateLimited), "{err}");
    }
    let err = app
        .client
        .verify_code(&user.email, &code)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(ErrorCode::RateLimited),
        "even the right code waits at the guessing address"
    );
    // The owner, at another address, still verifies with the code.
    let owner = client_from(&app, "127.0.0.2").await;
    assert!(
        owner
            .verify_code(&user.email, &code)
            .await
            .unwrap()
            .verified
    );
}

#[tokio::test]
async fn verification_answers_alike_for_every_email() {
    let app = spawn_app_with(|c| c.security.max_code_attempts = 2).await;
    let pending = TestUser::new("pending");
    app.register(&pending).await;
    let code = app.mail_to(&pending.email).await.code().unwrap();
    // A code that neither mail holds.
    let voided = TestUser::new("voided");
    app.register(&voided).await;
    let voided_code = app.mail_to(&voided.email).await.code().unwrap();
    let wrong = ["111111", "222222", "333333"]
        .into_iter()
        .find(|w| *w != code && *w != voided_code)
        .unwrap();
    let done = TestUser::new("done");
    app.register_verified(&done).await;
    let answer = |email: String| {
        let client = &app.client;
        async move {
            client
                .raw(
                    Method::POST,
                    "/api/v1/accounts/verify",
                    Some(json!({"email": email, "code": wrong})),
                    None,
                )
                .await
                .unwrap()
        }
    };
    let unknown = answer("nobody@example.org".into()).await;
    assert_eq!(unknown.0, 422, "{unknown:?}");
    assert_eq!(unknown.1["error"]["code"], "invalid_code");
    assert_eq!(answer(pending.email.clone()).await, unknown, "unverified");
    assert_eq!(answer(done.email.clone()).await, unknown, "verified");
    // the attempts that void a code, and after: the same answer
    for _ in 0..3 {
        assert_eq!(answer(voided.email.clone()).await, unknown, "voided");
    }
    // only the right code learns that it is void
    let err = app
        .client
        .verify_code(&voided.email, &voided_code)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::CodeExpired), "{err}");
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

#[tokio::test]
async fn flooding_password_checks_is_limited_and_logins_go_on() {
    let app = spawn_app_with(|c| {
        c.limits.rate_limits.password = Config::embedded_defaults().limits.rate_limits.password;
    })
    .await;
    let flooder = TestUser::new("flooder");
    app.register(&flooder).await;
    let session = app.login(&flooder).await;
    let innocent = TestUser::new("innocent");
    app.register(&innocent).await;
    let wrong = json!({"auth_key": B64(vec![9; 32])});
    let flood = async {
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let (status, answer) = app
                .client
                .raw(
                    Method::DELETE,
                    "/api/v1/me",
                    Some(wrong.clone()),
                    Some(session.token()),
                )
                .await
                .unwrap();
            if status == 429 {
                assert_limited(status, &answer);
            }
            statuses.push(status);
        }
        statuses
    };
    let login = app.client.login(&innocent.email, &innocent.password, None);
    let (statuses, login) = tokio::join!(flood, login);
    login.expect("a log-in while someone floods password checks");
    // five wrong passwords, then only waiting: no more hashing
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|&s| s == 429), "{statuses:?}");
    // change_password shares the class and the count
    let err = session
        .change_password(&flooder.password, "a brand new password")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::RateLimited), "{err}");
    // and the account is still there
    assert!(session.me().await.is_ok());
}
