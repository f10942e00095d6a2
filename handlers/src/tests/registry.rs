//! The registry as a whole: the pinned list of commands and rate-limit wiring.

use super::support::{auth_key, b64, register_body, TestApp};
use crate::register_all;
use ferrogram_core::command::Registry;
use ferrogram_core::ratelimit::{Rate, RateLimiter, RateRule};
use serde_json::json;
use std::collections::HashMap;

#[test]
fn every_command_is_registered_once() {
    let mut registry = Registry::new();
    register_all(&mut registry);
    assert_eq!(
        registry.names(),
        [
            "account.prelogin",
            "account.register",
            "account.resend_verification",
            "account.verify",
            "chat.accept_invitation",
            "chat.add_members",
            "chat.create_direct",
            "chat.create_group",
            "chat.decline_invitation",
            "chat.get",
            "chat.invitations",
            "chat.leave",
            "chat.list",
            "chat.remove_member",
            "chat.rename",
            "chat.set_role",
            "chat.transfer_ownership",
            "chat.typing",
            "me.change_password",
            "me.delete",
            "me.get",
            "me.update",
            "message.delete",
            "message.delivered",
            "message.edit",
            "message.history",
            "message.read",
            "message.send",
            "presence.get",
            "server.info",
            "session.create",
            "session.delete_current",
            "session.list",
            "session.revoke",
            "session.revoke_others",
            "user.get",
            "user.keys",
            "user.search",
        ]
    );
    // one handler per declaration, none without one
    let mut declared: Vec<&str> = ferrogram_core::commands::ALL
        .iter()
        .map(|c| c.name)
        .collect();
    declared.sort_unstable();
    assert_eq!(registry.names(), declared);
}

#[test]
#[should_panic(expected = "registered twice")]
fn registering_twice_fails_loudly() {
    let mut registry = Registry::new();
    register_all(&mut registry);
    register_all(&mut registry);
}

fn tight_limits(classes: &[&str]) -> RateLimiter {
    let rule = RateRule::both(Rate::new(100, 3600), Rate::new(2, 3600));
    RateLimiter::new(
        classes
            .iter()
            .map(|c| ((*c).to_owned(), rule))
            .collect::<HashMap<_, _>>(),
    )
}

#[tokio::test]
async fn rate_classes_are_keyed_by_the_normalised_email() {
    let app = TestApp::build(
        |_| {},
        tight_limits(&["register", "login", "prelogin", "verify", "resend"]),
    );
    app.register("a@x.org", "alice").await;

    // two attempts per account, whatever the spelling of the address
    let login = |email: &str| json!({"email": email, "auth_key": b64(&auth_key("alice"))});
    app.ok("session.create", None, login("a@x.org")).await;
    app.ok("session.create", None, login(" A@X.ORG")).await;
    let err = app
        .call("session.create", None, login("a@X.org"))
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "rate_limited");
    assert!(err.retry_after.unwrap() > 0);

    for command in ["account.prelogin", "account.resend_verification"] {
        for _ in 0..2 {
            app.ok(command, None, json!({"email": "B@x.org"})).await;
        }
        assert_eq!(
            app.err(command, None, json!({"email": "b@x.org"})).await,
            "rate_limited",
            "{command}"
        );
    }
    let verify = json!({"email": "c@x.org", "code": "000000"});
    for _ in 0..2 {
        assert_eq!(
            app.err("account.verify", None, verify.clone()).await,
            "invalid_code"
        );
    }
    assert_eq!(
        app.err("account.verify", None, verify).await,
        "rate_limited"
    );
    // register: the second try for an address is refused on its merits,
    // the third by the limiter
    app.register("e@x.org", "erin").await;
    assert_eq!(
        app.err("account.register", None, register_body("E@x.org", "erin2"))
            .await,
        "email_taken"
    );
    assert_eq!(
        app.err("account.register", None, register_body("e@X.org", "erin3"))
            .await,
        "rate_limited"
    );
}
