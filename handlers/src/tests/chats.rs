//! chat.*: creating chats, members and roles, titles, lists, typing.

use super::chat_support::{
    chat_events, chat_list, create_group, ids, live_events, people, send, Person,
};
use super::support::TestApp;
use crate::notify::Notification;
use ferrogram_core::ids::{ChatId, Seq, UserId};
use ferrogram_core::proto::{Chat, ChatKind, EventBody, LiveEvent, Role};
use serde_json::json;

fn roles(chat: &Chat) -> Vec<(UserId, Role)> {
    chat.members.iter().map(|m| (m.user.id, m.role)).collect()
}

async fn chat_of(app: &TestApp, person: &Person, command: &str, body: serde_json::Value) -> Chat {
    serde_json::from_value(app.ok(command, person.token(), body).await).unwrap()
}

#[tokio::test]
async fn a_direct_chat_is_one_per_pair_and_announced_to_both() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob"]).await;
    let (alice, bob) = (&p[0], &p[1]);
    app.notifier.take();
    let chat = chat_of(
        &app,
        alice,
        "chat.create_direct",
        json!({"user_id": bob.id}),
    )
    .await;
    assert_eq!(chat.kind, ChatKind::Direct);
    assert_eq!(chat.title, None);
    assert_eq!(chat.last_seq, Seq::new(1));
    assert_eq!(
        roles(&chat),
        [(alice.id, Role::Member), (bob.id, Role::Member)]
    );

    let calls = app.notifier.take();
    // the stored `created` event first (at commit), then each one's notice
    let Notification::ChatEvent { members, event } = &calls[0] else {
        panic!("{calls:?}");
    };
    assert_eq!(members, &ids(&[alice, bob]));
    assert!(matches!(event.body, EventBody::Created { .. }));
    let joined: Vec<UserId> = calls[1..]
        .iter()
        .map(|call| match call {
            Notification::Live {
                users,
                event: LiveEvent::ChatJoined { chat: summary },
            } => {
                assert_eq!(summary.id, chat.id);
                // each sees the other as the peer
                assert_ne!(summary.peer.as_ref().unwrap().id, users[0]);
                users[0]
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(joined, [alice.id, bob.id]);

    // the same chat from either side, without new events
    let again = chat_of(
        &app,
        bob,
        "chat.create_direct",
        json!({"user_id": alice.id}),
    )
    .await;
    assert_eq!((again.id, again.last_seq), (chat.id, Seq::new(1)));
    assert!(app.notifier.take().is_empty());

    assert_eq!(
        app.err(
            "chat.create_direct",
            alice.token(),
            json!({"user_id": alice.id})
        )
        .await,
        "invalid_members"
    );
    assert_eq!(
        app.err("chat.create_direct", alice.token(), json!({"user_id": 999}))
            .await,
        "user_not_found"
    );
}

#[tokio::test]
async fn direct_chats_keep_their_two_members_and_no_title() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol"]).await;
    let chat = chat_of(
        &app,
        &p[0],
        "chat.create_direct",
        json!({"user_id": p[1].id}),
    )
    .await;
    let token = p[0].token();
    for (command, body) in [
        (
            "chat.add_members",
            json!({"chat_id": chat.id, "user_ids": [p[2].id]}),
        ),
        (
            "chat.remove_member",
            json!({"chat_id": chat.id, "user_id": p[1].id}),
        ),
        ("chat.rename", json!({"chat_id": chat.id, "title": "x"})),
        ("chat.leave", json!({"chat_id": chat.id})),
        (
            "chat.set_role",
            json!({"chat_id": chat.id, "user_id": p[1].id, "role": "admin"}),
        ),
        (
            "chat.transfer_ownership",
            json!({"chat_id": chat.id, "user_id": p[1].id}),
        ),
    ] {
        assert_eq!(
            app.err(command, token, body).await,
            "not_a_group",
            "{command}"
        );
    }
}

#[tokio::test]
async fn group_titles_and_sizes_are_checked() {
    let app = TestApp::with_settings(|s| s.max_group_members = 3);
    let p = people(&app, &["alice", "bob", "carol", "dave"]).await;
    let create = |title: &str, members: Vec<UserId>| json!({"title": title, "member_ids": members});
    for bad in ["", "   ", &"x".repeat(129), "a\nb"] {
        assert_eq!(
            app.err(
                "chat.create_group",
                p[0].token(),
                create(bad, vec![p[1].id])
            )
            .await,
            "invalid_title",
            "{bad:?}"
        );
    }
    assert_eq!(
        app.err(
            "chat.create_group",
            p[0].token(),
            create("t", vec![p[1].id, p[2].id, p[3].id])
        )
        .await,
        "too_many_members"
    );
    // an id without an account is answered like an invitee
    let unknown = chat_of(
        &app,
        &p[0],
        "chat.create_group",
        create("t", vec![UserId(999)]),
    )
    .await;
    assert_eq!(
        (unknown.members.len(), unknown.invited.clone()),
        (1, vec![UserId(999)])
    );
    // the creator and duplicates count once
    let body = create("  Crew 🦀 ", vec![p[1].id, p[0].id, p[1].id, p[2].id]);
    let chat = chat_of(&app, &p[0], "chat.create_group", body).await;
    assert_eq!(chat.title.as_deref(), Some("Crew 🦀"));
    assert_eq!(
        roles(&chat),
        [
            (p[0].id, Role::Owner),
            (p[1].id, Role::Member),
            (p[2].id, Role::Member)
        ]
    );
    assert_eq!(
        app.err(
            "chat.add_members",
            p[0].token(),
            json!({"chat_id": chat.id, "user_ids": [p[3].id]})
        )
        .await,
        "too_many_members"
    );
    assert_eq!(
        app.err(
            "chat.add_members",
            p[0].token(),
            json!({"chat_id": chat.id, "user_ids": []})
        )
        .await,
        "invalid_members"
    );
}

#[tokio::test]
async fn admins_manage_members_and_the_owner_manages_admins() {
    let app = TestApp::new();
    let p = people(&app, &["owner", "admin", "member", "newbie", "admin2"]).await;
    let (owner, admin, member, newbie, admin2) = (&p[0], &p[1], &p[2], &p[3], &p[4]);
    let chat = create_group(&app, owner, &[admin, member, admin2]).await;
    let id = chat.id;
    for who in [admin, admin2] {
        chat_of(
            &app,
            owner,
            "chat.set_role",
            json!({"chat_id": id, "user_id": who.id, "role": "admin"}),
        )
        .await;
    }
    app.notifier.take();

    // members do not manage
    let add = json!({"chat_id": id, "user_ids": [newbie.id]});
    assert_eq!(
        app.err("chat.add_members", member.token(), add.clone())
            .await,
        "not_chat_admin"
    );
    assert_eq!(
        app.err(
            "chat.rename",
            member.token(),
            json!({"chat_id": id, "title": "x"})
        )
        .await,
        "not_chat_admin"
    );
    // admins add and rename ...
    let after_add = chat_of(&app, admin, "chat.add_members", add.clone()).await;
    assert_eq!(after_add.members.len(), 5);
    let calls = app.notifier.take();
    assert!(calls.iter().any(|c| matches!(c,
        Notification::ChatEvent { members, event } if members.len() == 5
            && event.body == EventBody::MembersAdded { user_ids: vec![newbie.id] })));
    assert!(calls.iter().any(|c| matches!(c,
        Notification::Live { users, event: LiveEvent::ChatJoined { chat } }
            if users == &[newbie.id] && chat.id == id && chat.my_role == Role::Member)));
    assert_eq!(
        app.err("chat.add_members", admin.token(), add).await,
        "invalid_members"
    );
    let renamed = chat_of(
        &app,
        admin,
        "chat.rename",
        json!({"chat_id": id, "title": "New"}),
    )
    .await;
    assert_eq!(renamed.title.as_deref(), Some("New"));
    // ... but neither set roles nor remove other admins or the owner
    assert_eq!(
        app.err(
            "chat.set_role",
            admin.token(),
            json!({"chat_id": id, "user_id": member.id, "role": "admin"})
        )
        .await,
        "not_chat_admin"
    );
    for target in [admin2, owner] {
        assert_eq!(
            app.err(
                "chat.remove_member",
                admin.token(),
                json!({"chat_id": id, "user_id": target.id})
            )
            .await,
            "not_chat_admin"
        );
    }
    app.notifier.take();
    // an admin removes a member: everyone hears it, the removed one too
    let after = chat_of(
        &app,
        admin,
        "chat.remove_member",
        json!({"chat_id": id, "user_id": newbie.id}),
    )
    .await;
    assert!(after.members.iter().all(|m| m.user.id != newbie.id));
    let calls = app.notifier.take();
    assert!(matches!(&calls[0],
        Notification::ChatEvent { members, event }
            if members.contains(&newbie.id) && members.len() == 5
                && event.body == EventBody::MemberRemoved { user_id: newbie.id }));
    assert_eq!(
        calls[1],
        Notification::Live {
            users: vec![newbie.id],
            event: LiveEvent::ChatRemoved { chat_id: id }
        }
    );
    // the owner removes an admin
    chat_of(
        &app,
        owner,
        "chat.remove_member",
        json!({"chat_id": id, "user_id": admin2.id}),
    )
    .await;
    assert_eq!(
        app.err(
            "chat.remove_member",
            owner.token(),
            json!({"chat_id": id, "user_id": admin2.id})
        )
        .await,
        "invalid_members"
    );

    // the owner leaves only after handing over
    assert_eq!(
        app.err("chat.leave", owner.token(), json!({"chat_id": id}))
            .await,
        "owner_must_transfer"
    );
    assert_eq!(
        app.err(
            "chat.set_role",
            owner.token(),
            json!({"chat_id": id, "user_id": member.id, "role": "owner"})
        )
        .await,
        "bad_request"
    );
    assert_eq!(
        app.err(
            "chat.transfer_ownership",
            admin.token(),
            json!({"chat_id": id, "user_id": admin.id})
        )
        .await,
        "not_chat_admin"
    );
    let handed = chat_of(
        &app,
        owner,
        "chat.transfer_ownership",
        json!({"chat_id": id, "user_id": member.id}),
    )
    .await;
    assert_eq!(
        roles(&handed),
        [
            (owner.id, Role::Admin),
            (admin.id, Role::Admin),
            (member.id, Role::Owner)
        ]
    );
    app.notifier.take();
    app.ok("chat.leave", owner.token(), json!({"chat_id": id}))
        .await;
    let calls = app.notifier.take();
    assert!(matches!(&calls[0],
        Notification::ChatEvent { members, event }
            if members.contains(&owner.id)
                && event.body == EventBody::MemberLeft { user_id: owner.id }));
    assert_eq!(
        calls[1],
        Notification::Live {
            users: vec![owner.id],
            event: LiveEvent::ChatRemoved { chat_id: id }
        }
    );
    assert_eq!(
        app.err("chat.get", owner.token(), json!({"chat_id": id}))
            .await,
        "not_a_member"
    );
}

#[tokio::test]
async fn the_list_shows_the_last_message_unread_count_and_read_position() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&p[0], &p[1], &p[2]);
    let group = create_group(&app, alice, &[bob, carol]).await;
    let direct = chat_of(
        &app,
        bob,
        "chat.create_direct",
        json!({"user_id": alice.id}),
    )
    .await;
    let all = [alice, bob, carol];
    send(&app, group.id, alice, "g1", &all).await;
    send(&app, group.id, bob, "g2", &all).await;
    let newest = send(&app, group.id, bob, "g3", &all).await;
    let list = chat_list(&app, alice).await;
    assert_eq!(list.len(), 2);
    let row = list.iter().find(|c| c.id == group.id).unwrap();
    assert_eq!(row.kind, ChatKind::Group);
    assert_eq!(row.title.as_deref(), Some("Team"));
    assert_eq!((row.member_count, row.my_role), (3, Role::Owner));
    assert_eq!(
        (row.last_seq, row.my_read_seq, row.unread_count),
        (Seq::new(4), Seq::new(1), 2)
    );
    assert_eq!(row.last_message.as_ref().map(|m| m.seq), Some(newest.seq));
    let dm = list.iter().find(|c| c.id == direct.id).unwrap();
    assert_eq!(dm.peer.as_ref().map(|u| u.handle.as_str()), Some("bob"));
    assert_eq!(dm.last_message, None);

    app.ok(
        "message.read",
        alice.token(),
        json!({"chat_id": group.id, "seq": 3}),
    )
    .await;
    let row = chat_list(&app, alice)
        .await
        .into_iter()
        .find(|c| c.id == group.id)
        .unwrap();
    assert_eq!((row.my_read_seq, row.unread_count), (Seq::new(3), 1));
    // carol's unread counts bob's and alice's messages
    let carol_row = chat_list(&app, carol).await.remove(0);
    assert_eq!(carol_row.unread_count, 3);
}

#[tokio::test]
async fn typing_reaches_the_other_members_only() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol", "dave"]).await;
    let chat = create_group(&app, &p[0], &[&p[1], &p[2]]).await;
    app.notifier.take();
    app.ok("chat.typing", p[1].token(), json!({"chat_id": chat.id}))
        .await;
    assert_eq!(
        live_events(&app),
        [(
            ids(&[&p[0], &p[2]]),
            LiveEvent::Typing {
                chat_id: chat.id,
                user_id: p[1].id
            }
        )]
    );
    assert_eq!(
        app.err("chat.typing", p[3].token(), json!({"chat_id": chat.id}))
            .await,
        "not_a_member"
    );
    assert_eq!(
        app.err("chat.typing", p[3].token(), json!({"chat_id": ChatId(999)}))
            .await,
        "chat_not_found"
    );
    assert!(chat_events(&app).is_empty());
}

#[tokio::test]
async fn presence_is_shared_with_chat_partners_only() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "stranger"]).await;
    chat_of(
        &app,
        &p[0],
        "chat.create_direct",
        json!({"user_id": p[1].id}),
    )
    .await;
    app.notifier
        .set_presence(ferrogram_core::proto::PresenceInfo {
            user_id: p[1].id,
            online: true,
            last_seen_at: None,
        });
    let answer = app
        .ok(
            "presence.get",
            p[0].token(),
            json!({"user_ids": [p[1].id, p[2].id, p[0].id, p[1].id]}),
        )
        .await;
    let users: Vec<ferrogram_core::proto::PresenceInfo> =
        serde_json::from_value(answer["users"].clone()).unwrap();
    assert_eq!(users.len(), 2, "{users:?}");
    assert_eq!((users[0].user_id, users[0].online), (p[0].id, false));
    // offline: last seen comes from the last session activity
    assert!(users[0].last_seen_at.is_some());
    assert_eq!((users[1].user_id, users[1].online), (p[1].id, true));
    let too_many: Vec<i64> = (0..201).collect();
    assert_eq!(
        app.err("presence.get", p[0].token(), json!({"user_ids": too_many}))
            .await,
        "bad_request"
    );
}

#[tokio::test]
async fn chat_list_pages_by_limit_and_refuses_bad_limits_and_cursors() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob"]).await;
    let (alice, bob) = (&p[0], &p[1]);
    let mut groups = Vec::new();
    for _ in 0..5 {
        groups.push(create_group(&app, alice, &[bob]).await.id);
    }
    let mut listed = Vec::new();
    let mut body = json!({"limit": 2});
    loop {
        let page = app.ok("chat.list", bob.token(), body.clone()).await;
        let chats = page["chats"].as_array().unwrap();
        assert!(!chats.is_empty() && chats.len() <= 2, "{page}");
        listed.extend(chats.iter().map(|c| c["id"].as_i64().unwrap()));
        if page["next_cursor"].is_null() {
            break;
        }
        body = json!({"limit": 2, "cursor": page["next_cursor"]});
    }
    let newest_first: Vec<i64> = groups.iter().rev().map(|g| g.0).collect();
    assert_eq!(listed, newest_first);
    // `{}` is the first page of up to 100, the last one here.
    let all = app.ok("chat.list", bob.token(), json!({})).await;
    assert_eq!(all["chats"].as_array().unwrap().len(), 5);
    assert!(all["next_cursor"].is_null());
    for limit in [0, 501] {
        assert_eq!(
            app.err("chat.list", bob.token(), json!({"limit": limit}))
                .await,
            "bad_request"
        );
    }
    for cursor in ["", "1.2", "x.y.z", "1.2.3.4"] {
        assert_eq!(
            app.err("chat.list", bob.token(), json!({"cursor": cursor}))
                .await,
            "invalid_cursor"
        );
    }
}

/// Issue 11, point 14c: `me.delete` racing `chat.add_members` for the same
/// account. However they interleave, the group ends without the deleted
/// account, and every `members_added` of it is followed by its
/// `member_left`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_deletion_racing_adds_leaves_the_group_consistent() {
    let app = TestApp::new();
    let handles: Vec<String> = (0..12).map(|i| format!("victim{i}")).collect();
    let mut names = vec!["alice"];
    names.extend(handles.iter().map(String::as_str));
    let p = people(&app, &names).await;
    let group = create_group(&app, &p[0], &[]).await;
    for (victim, handle) in p[1..].iter().zip(&handles) {
        let add = app.call(
            "chat.add_members",
            p[0].token(),
            json!({"chat_id": group.id, "user_ids": [victim.id]}),
        );
        let key = super::support::b64(&super::support::auth_key(handle));
        let delete = app.call("me.delete", victim.token(), json!({ "auth_key": key }));
        let (added, deleted) = tokio::join!(add, delete);
        deleted.unwrap();
        added.unwrap();
    }
    let chat: Chat = serde_json::from_value(
        app.ok("chat.get", p[0].token(), json!({"chat_id": group.id}))
            .await,
    )
    .unwrap();
    assert_eq!(
        ids(&[&p[0]]),
        chat.members.iter().map(|m| m.user.id).collect::<Vec<_>>()
    );
    let events = app
        .ctx
        .storage
        .with_conn(|conn| ferrogram_storage::events::events_after(conn, group.id, Seq::ZERO, 1000))
        .unwrap();
    for victim in &p[1..] {
        let added = events.iter().position(|e| {
            matches!(&e.body, EventBody::MembersAdded { user_ids } if user_ids.contains(&victim.id))
        });
        let left = events
            .iter()
            .position(|e| e.body == EventBody::MemberLeft { user_id: victim.id });
        match (added, left) {
            (None, None) => {}
            (Some(added), Some(left)) => assert!(added < left),
            other => panic!("user {}: added/left at {other:?}", victim.id),
        }
    }
}
