//! What a hostile client meets: rate classes on the costly commands, the
//! directory closed to unverified accounts, and names that cannot hide text
//! direction or invisible characters.

use super::chat_support::{create_group, live_events, people, send_body};
use super::support::{register_body, TestApp};
use ferrogram_core::ratelimit::{Rate, RateLimiter, RateRule};
use serde_json::json;
use std::collections::HashMap;

/// A limiter with `burst` requests per hour per account for each class.
fn per_account(classes: &[(&str, u32)]) -> RateLimiter {
    RateLimiter::new(
        classes
            .iter()
            .map(|(class, burst)| {
                (
                    (*class).to_owned(),
                    RateRule::per_account(Rate::new(*burst, 3600)),
                )
            })
            .collect::<HashMap<_, _>>(),
    )
}

#[tokio::test]
async fn a_flood_of_messages_is_refused_per_account() {
    let app = TestApp::build(|_| {}, per_account(&[("send", 5)]));
    let p = people(&app, &["alice", "bob"]).await;
    let (alice, bob) = (&p[0], &p[1]);
    let chat = create_group(&app, alice, &[bob]).await;
    for i in 0..5 {
        let body = send_body(chat.id, alice, &format!("m{i}"), &[alice, bob]);
        app.ok("message.send", alice.token(), body).await;
    }
    let body = send_body(chat.id, alice, "m5", &[alice, bob]);
    let err = app
        .call("message.send", alice.token(), body)
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "rate_limited");
    assert!(err.retry_after.is_some_and(|s| s >= 1));
    // the budget is alice's: bob still sends
    let body = send_body(chat.id, bob, "b0", &[alice, bob]);
    app.ok("message.send", bob.token(), body).await;
}

#[tokio::test]
async fn typing_over_its_rate_is_dropped_not_queued() {
    let app = TestApp::build(|_| {}, per_account(&[("typing", 3)]));
    let p = people(&app, &["alice", "bob"]).await;
    let (alice, bob) = (&p[0], &p[1]);
    let chat = create_group(&app, alice, &[bob]).await;
    let _ = live_events(&app);
    for _ in 0..50 {
        // every notice is answered as sent ...
        app.ok("chat.typing", alice.token(), json!({"chat_id": chat.id}))
            .await;
    }
    // ... but only the first three reached anyone
    assert_eq!(live_events(&app).len(), 3);
}

#[tokio::test]
async fn a_flood_of_searches_is_refused() {
    let app = TestApp::build(|_| {}, per_account(&[("user_search", 3)]));
    let p = people(&app, &["alice"]).await;
    for _ in 0..3 {
        app.ok("user.search", p[0].token(), json!({"query": "ali"}))
            .await;
    }
    assert_eq!(
        app.err("user.search", p[0].token(), json!({"query": "ali"}))
            .await,
        "rate_limited"
    );
}

#[tokio::test]
async fn groups_created_per_account_are_limited() {
    let app = TestApp::build(|_| {}, per_account(&[("group_create", 2)]));
    let p = people(&app, &["alice", "bob"]).await;
    for _ in 0..2 {
        create_group(&app, &p[0], &[&p[1]]).await;
    }
    let body = json!({"title": "Third", "member_ids": [p[1].id]});
    assert_eq!(
        app.err("chat.create_group", p[0].token(), body).await,
        "rate_limited"
    );
}

#[tokio::test]
async fn unverified_accounts_cannot_read_the_directory() {
    let app = TestApp::new();
    let p = people(&app, &["alice"]).await;
    app.register("u@x.org", "unverified").await;
    let token = app.login("u@x.org", "unverified").await.token;
    for (command, body) in [
        ("user.search", json!({"query": "ali"})),
        ("user.get", json!({"handle": "alice"})),
        ("user.keys", json!({"id": p[0].id})),
    ] {
        assert_eq!(
            app.err(command, Some(&token), body).await,
            "email_not_verified",
            "{command}"
        );
    }
}

/// A right-to-left override and a zero-width space, as used to disguise a
/// name ("evil\u{202E}gnp.exe" shows as "evilexe.png").
const DISGUISES: [&str; 3] = ["evil\u{202E}gnp.exe", "ad\u{200B}min", "\u{2067}x\u{2069}"];

#[tokio::test]
async fn names_bios_and_titles_refuse_invisible_formatting() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob"]).await;
    let chat = create_group(&app, &p[0], &[&p[1]]).await;
    for text in DISGUISES {
        let mut body = register_body("new@x.org", "newcomer");
        body["display_name"] = json!(text);
        assert_eq!(
            app.err("account.register", None, body).await,
            "invalid_display_name"
        );
        assert_eq!(
            app.err("me.update", p[0].token(), json!({"display_name": text}))
                .await,
            "invalid_display_name"
        );
        assert_eq!(
            app.err("me.update", p[0].token(), json!({"bio": text}))
                .await,
            "invalid_bio"
        );
        let group = json!({"title": text, "member_ids": [p[1].id]});
        assert_eq!(
            app.err("chat.create_group", p[0].token(), group).await,
            "invalid_title"
        );
        let rename = json!({"chat_id": chat.id, "title": text});
        assert_eq!(
            app.err("chat.rename", p[0].token(), rename).await,
            "invalid_title"
        );
    }
    // emoji joined by ZWJ are writing, not a disguise
    let family = "Family \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
    let rename = json!({"chat_id": chat.id, "title": family});
    app.ok("chat.rename", p[0].token(), rename).await;
}
