//! Revoking a session or deleting an account closes its sockets at once (the
//! notifier is told); a deleted account leaves its chats on record.

use super::chat_support::{chat_events, create_group, people, send};
use super::support::{auth_key, b64, TestApp};
use crate::notify::Notification;
use ferrogram_core::ids::SessionId;
use ferrogram_core::proto::{EventBody, KdfParams, Role, SessionList};
use serde_json::json;

async fn session_ids(app: &TestApp, token: &str) -> Vec<SessionId> {
    let list: SessionList =
        serde_json::from_value(app.ok("session.list", Some(token), json!({})).await).unwrap();
    list.sessions.into_iter().map(|s| s.id).collect()
}

fn closed_sessions(app: &TestApp) -> Vec<SessionId> {
    let mut closed: Vec<SessionId> = app
        .notifier
        .take()
        .into_iter()
        .filter_map(|call| match call {
            Notification::SessionClosed(id) => Some(id),
            _ => None,
        })
        .collect();
    closed.sort_by(|a, b| a.0.cmp(&b.0));
    closed
}

#[tokio::test]
async fn revoking_and_logging_out_close_those_sessions_only() {
    let app = TestApp::new();
    let (_, main) = app.signup("a@x.org", "alice").await;
    let laptop = app.login("a@x.org", "alice").await;
    let phone = app.login("a@x.org", "alice").await;
    let tablet = app.login("a@x.org", "alice").await;
    app.notifier.take();

    app.ok(
        "session.revoke",
        Some(&main),
        json!({"id": laptop.session.id}),
    )
    .await;
    assert_eq!(closed_sessions(&app), vec![laptop.session.id.clone()]);
    // an unknown id closes nothing
    app.err(
        "session.revoke",
        Some(&main),
        json!({"id": laptop.session.id}),
    )
    .await;
    assert!(closed_sessions(&app).is_empty());

    app.ok("session.delete_current", Some(&tablet.token), json!({}))
        .await;
    assert_eq!(closed_sessions(&app), vec![tablet.session.id.clone()]);

    let main_id = session_ids(&app, &main).await;
    let main_id: Vec<_> = main_id
        .into_iter()
        .filter(|id| *id != phone.session.id)
        .collect();
    app.ok("session.revoke_others", Some(&main), json!({}))
        .await;
    assert_eq!(closed_sessions(&app), vec![phone.session.id.clone()]);
    assert_eq!(session_ids(&app, &main).await, main_id);
}

#[tokio::test]
async fn a_password_change_closes_the_other_sessions() {
    let app = TestApp::new();
    let (_, main) = app.signup("a@x.org", "alice").await;
    let mut others: Vec<SessionId> = Vec::new();
    for _ in 0..2 {
        others.push(app.login("a@x.org", "alice").await.session.id);
    }
    others.sort_by(|a, b| a.0.cmp(&b.0));
    app.notifier.take();
    let change = json!({
        "old_auth_key": b64(&auth_key("alice")),
        "new_auth_key": b64(&[0x55; 32]),
        "new_kdf_salt": b64(&[3; 24]),
        "new_kdf": KdfParams::DEFAULT,
        "sealed_keys": b64(b"resealed"),
    });
    assert_eq!(
        app.ok("me.change_password", Some(&main), change).await,
        json!({"revoked": 2})
    );
    assert_eq!(closed_sessions(&app), others);
}

#[tokio::test]
async fn a_deleted_account_leaves_its_chats_and_its_sockets_close() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&p[0], &p[1], &p[2]);
    let group = create_group(&app, alice, &[bob, carol]).await;
    let direct = app
        .ok(
            "chat.create_direct",
            alice.token(),
            json!({"user_id": bob.id}),
        )
        .await;
    let direct_id = serde_json::from_value(direct["id"].clone()).unwrap();
    let kept = send(&app, group.id, alice, "last words", &[alice, bob, carol]).await;
    app.notifier.take();

    app.ok(
        "me.delete",
        alice.token(),
        json!({"auth_key": b64(&auth_key("alice"))}),
    )
    .await;
    let calls = app.notifier.calls();
    assert_eq!(calls.last(), Some(&Notification::UserClosed(alice.id)));
    let announced = chat_events(&app);
    let in_group: Vec<_> = announced
        .iter()
        .filter(|(_, e)| e.chat_id == group.id)
        .map(|(_, e)| e.body.clone())
        .collect();
    // the owner left; bob, the longest-standing member, owns the group now
    assert_eq!(
        in_group,
        [
            EventBody::MemberLeft { user_id: alice.id },
            EventBody::RoleChanged {
                user_id: bob.id,
                role: Role::Owner
            }
        ]
    );
    assert!(announced.iter().any(|(to, e)| e.chat_id == direct_id
        && to.contains(&bob.id)
        && e.body == EventBody::MemberLeft { user_id: alice.id }));

    let chat = app
        .ok("chat.get", bob.token(), json!({"chat_id": group.id}))
        .await;
    assert_eq!(chat["members"].as_array().unwrap().len(), 2);
    // the messages stay, their sender no longer resolves
    let page = app
        .ok(
            "message.history",
            carol.token(),
            json!({"chat_id": group.id}),
        )
        .await;
    assert!(page["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["seq"] == kept.seq.get() && e["sender"] == alice.id.0));
    // the remaining members send for the remaining members
    send(&app, group.id, bob, "after", &[bob, carol]).await;
    send(&app, direct_id, bob, "hello?", &[bob]).await;
}
