//! account.verify and account.resend_verification.

use super::support::{code_in, token_in, TestApp};
use serde_json::json;

/// A 6-digit code different from `code`.
fn other_code(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

#[tokio::test]
async fn code_verifies_once() {
    let app = TestApp::new();
    let id = app.register("a@x.org", "alice").await;
    let code = code_in(&app.last_mail_to("a@x.org"));
    // surrounding spaces and another spelling of the address are fine
    let resp = app
        .ok(
            "account.verify",
            None,
            json!({"email": "A@X.org", "code": format!(" {code} ")}),
        )
        .await;
    assert_eq!(resp, json!({"user_id": id, "verified": true}));
    let me = app.login("a@x.org", "alice").await.me;
    assert!(me.verified);
    // single use: the same code again is just invalid
    let again = app
        .err(
            "account.verify",
            None,
            json!({"email": "a@x.org", "code": code}),
        )
        .await;
    assert_eq!(again, "invalid_code");
}

#[tokio::test]
async fn link_token_verifies_once() {
    let app = TestApp::new();
    let id = app.register("a@x.org", "alice").await;
    let token = token_in(&app.last_mail_to("a@x.org"));
    let resp = app
        .ok("account.verify", None, json!({ "token": token }))
        .await;
    assert_eq!(resp, json!({"user_id": id, "verified": true}));
    assert_eq!(
        app.err("account.verify", None, json!({ "token": token }))
            .await,
        "invalid_code"
    );
    // the code of the same mail is spent too
    let code = code_in(&app.last_mail_to("a@x.org"));
    assert_eq!(
        app.err(
            "account.verify",
            None,
            json!({"email": "a@x.org", "code": code})
        )
        .await,
        "invalid_code"
    );
}

#[tokio::test]
async fn wrong_codes_void_the_code_after_the_limit() {
    let app = TestApp::new(); // max_code_attempts = 3
    app.register("a@x.org", "alice").await;
    let code = code_in(&app.last_mail_to("a@x.org"));
    let wrong = json!({"email": "a@x.org", "code": other_code(&code)});
    assert_eq!(
        app.err("account.verify", None, wrong.clone()).await,
        "invalid_code"
    );
    assert_eq!(
        app.err("account.verify", None, wrong.clone()).await,
        "invalid_code"
    );
    // the third wrong code uses up the attempts, and answers like any
    // wrong code (a stranger learns nothing)
    assert_eq!(app.err("account.verify", None, wrong).await, "invalid_code");
    // now even the right code is refused: a new one is needed, and only
    // its holder is told so
    let right = json!({"email": "a@x.org", "code": code});
    assert_eq!(app.err("account.verify", None, right).await, "code_expired");

    let before = app.mails().len();
    app.ok(
        "account.resend_verification",
        None,
        json!({"email": "a@x.org"}),
    )
    .await;
    // inside the cooldown nothing was sent; wait it out by shortening it
    assert_eq!(app.mails().len(), before, "register started the cooldown");
}

#[tokio::test]
async fn a_new_code_after_voiding_works() {
    let app = TestApp::with_settings(|s| s.resend_cooldown_secs = 0);
    app.register("a@x.org", "alice").await;
    let old = code_in(&app.last_mail_to("a@x.org"));
    for _ in 0..3 {
        let _ = app
            .call(
                "account.verify",
                None,
                json!({"email": "a@x.org", "code": other_code(&old)}),
            )
            .await;
    }
    app.ok(
        "account.resend_verification",
        None,
        json!({"email": "a@x.org"}),
    )
    .await;
    let new = code_in(&app.last_mail_to("a@x.org"));
    app.ok(
        "account.verify",
        None,
        json!({"email": "a@x.org", "code": new}),
    )
    .await;
}

#[tokio::test]
async fn malformed_codes_do_not_use_up_attempts() {
    let app = TestApp::new();
    app.register("a@x.org", "alice").await;
    for bad in ["12345", "1234567", "abcdef", ""] {
        let code = app
            .err(
                "account.verify",
                None,
                json!({"email": "a@x.org", "code": bad}),
            )
            .await;
        assert_eq!(code, "invalid_code", "{bad:?}");
    }
    app.verify("a@x.org").await;
}

#[tokio::test]
async fn expired_code_and_link_are_refused() {
    // a zero lifetime: expired the moment it is issued
    let app = TestApp::with_settings(|s| s.verification_ttl_secs = 0);
    app.register("a@x.org", "alice").await;
    let mail = app.last_mail_to("a@x.org");
    let by_code = json!({"email": "a@x.org", "code": code_in(&mail)});
    assert_eq!(
        app.err("account.verify", None, by_code).await,
        "code_expired"
    );
    let by_link = json!({ "token": token_in(&mail) });
    assert_eq!(
        app.err("account.verify", None, by_link).await,
        "code_expired"
    );
    assert!(!app.login("a@x.org", "alice").await.me.verified);
}

#[tokio::test]
async fn unknown_accounts_and_bad_requests() {
    let app = TestApp::new();
    app.register("a@x.org", "alice").await;
    let code = code_in(&app.last_mail_to("a@x.org"));
    // an unknown address answers like a wrong code
    let unknown = json!({"email": "ghost@x.org", "code": code});
    assert_eq!(
        app.err("account.verify", None, unknown).await,
        "invalid_code"
    );
    let forged = json!({ "token": crate::secrets::new_token() });
    assert_eq!(
        app.err("account.verify", None, forged).await,
        "invalid_code"
    );
    assert_eq!(
        app.err("account.verify", None, json!({"token": "short"}))
            .await,
        "invalid_code"
    );
    for body in [
        json!({}),
        json!({"email": "a@x.org"}),
        json!({"code": code}),
        json!({"email": "a@x.org", "code": code, "token": crate::secrets::new_token()}),
    ] {
        assert_eq!(
            app.err("account.verify", None, body.clone()).await,
            "bad_request",
            "{body}"
        );
    }
}

#[tokio::test]
async fn resend_answers_alike_for_every_address() {
    let app = TestApp::new(); // cooldown 60 s
    app.register("unverified@x.org", "unverified").await;
    app.register("verified@x.org", "verified").await;
    app.verify("verified@x.org").await;
    let mails_before = app.mails().len();

    // registering started the cooldown for both accounts; an address without
    // an account starts its own at the first request, and then all three
    // answer the same way
    let first = app
        .ok(
            "account.resend_verification",
            None,
            json!({"email": "ghost@x.org"}),
        )
        .await;
    assert_eq!(first, json!({"cooldown_secs": 60}));
    for email in ["unverified@x.org", "verified@x.org", "ghost@x.org"] {
        let resp = app
            .ok(
                "account.resend_verification",
                None,
                json!({ "email": email }),
            )
            .await;
        let left = resp["cooldown_secs"].as_u64().unwrap();
        assert!((58..=60).contains(&left), "{email}: {left}");
    }
    assert_eq!(
        app.mails().len(),
        mails_before,
        "nothing is sent inside the cooldown"
    );
    assert_eq!(
        app.err("account.resend_verification", None, json!({"email": "bad"}))
            .await,
        "invalid_email"
    );
}

#[tokio::test]
async fn resend_replaces_the_code_and_mails_only_unverified_accounts() {
    let app = TestApp::with_settings(|s| s.resend_cooldown_secs = 0);
    app.register("a@x.org", "alice").await;
    app.register("b@x.org", "bob").await;
    app.verify("b@x.org").await;
    let old = app.last_mail_to("a@x.org");

    let count = app.mails().len();
    for email in ["a@x.org", "b@x.org", "ghost@x.org"] {
        let resp = app
            .ok(
                "account.resend_verification",
                None,
                json!({ "email": email }),
            )
            .await;
        assert_eq!(resp, json!({"cooldown_secs": 0}));
    }
    // only the unverified account got mail
    let mails = app.mails();
    assert_eq!(mails.len(), count + 1);
    let new = &mails[count];
    assert_eq!(new.to, "a@x.org");
    assert_ne!(token_in(new), token_in(&old));

    // the old code and link are void, the new ones work
    let old_token = json!({ "token": token_in(&old) });
    assert_eq!(
        app.err("account.verify", None, old_token).await,
        "invalid_code"
    );
    if code_in(&old) != code_in(new) {
        let old_code = json!({"email": "a@x.org", "code": code_in(&old)});
        assert_eq!(
            app.err("account.verify", None, old_code).await,
            "invalid_code"
        );
    }
    app.ok("account.verify", None, json!({ "token": token_in(new) }))
        .await;
}
