//! message.*: envelope checks, idempotent sends, edits and deletes, history,
//! read receipts, fan-out after commit, resume.

use super::chat_support::{
    chat_events, create_group, history, ids, live_events, people, seal, send, send_body,
};
use super::support::TestApp;
use ferrogram_core::ids::{ChatId, Seq};
use ferrogram_core::proto::{ChatEvent, EventBody, LiveEvent, MessageAck};
use ferrogram_storage::events;
use serde_json::json;

fn stored_events(app: &TestApp, chat: ChatId) -> i64 {
    app.ctx
        .storage
        .with_conn(|conn| events::count(conn, chat))
        .unwrap()
}

#[tokio::test]
async fn a_message_is_acknowledged_after_its_commit_and_fanned_out_to_every_member() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol", "dave"]).await;
    let (alice, bob, carol) = (&p[0], &p[1], &p[2]);
    let chat = create_group(&app, alice, &[bob, carol]).await;
    app.notifier.take();
    let envelope = seal(chat.id, alice, "m-1", "hi **all** 👋", &[alice, bob, carol]);
    let body = json!({"chat_id": chat.id, "client_msg_id": "m-1", "envelope": envelope});
    let ack: MessageAck =
        serde_json::from_value(app.ok("message.send", alice.token(), body).await).unwrap();
    assert_eq!(
        (ack.chat_id, ack.seq, ack.duplicate),
        (chat.id, Seq::new(2), false)
    );

    // announced before the answer, to every member (the sender's other
    // sessions included), and it is exactly what was stored
    let announced = chat_events(&app);
    assert_eq!(announced.len(), 1);
    let (members, event) = &announced[0];
    assert_eq!(members, &ids(&[alice, bob, carol]));
    assert_eq!(
        (event.seq, event.sender, event.at),
        (Seq::new(2), alice.id, ack.at)
    );
    assert_eq!(
        event.body,
        EventBody::Message {
            client_msg_id: "m-1".into(),
            envelope
        }
    );
    let stored = app
        .ctx
        .storage
        .with_conn(|conn| events::by_seq(conn, chat.id, Seq::new(2)))
        .unwrap();
    assert_eq!(stored.as_ref(), Some(event));
    // the writer's group commit did the work
    assert!(app.writer.stats().transactions >= 2);
}

#[tokio::test]
async fn a_retried_send_is_stored_once_and_announced_once() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob"]).await;
    let chat = create_group(&app, &p[0], &[&p[1]]).await;
    let body = send_body(chat.id, &p[0], "retry-me", &[&p[0], &p[1]]);
    app.notifier.take();
    let first: MessageAck =
        serde_json::from_value(app.ok("message.send", p[0].token(), body.clone()).await).unwrap();
    let second: MessageAck =
        serde_json::from_value(app.ok("message.send", p[0].token(), body).await).unwrap();
    assert!(!first.duplicate && second.duplicate);
    assert_eq!((first.seq, first.at), (second.seq, second.at));
    // a retry with a freshly sealed envelope (same id) is the same message too
    let resealed = send(&app, chat.id, &p[0], "retry-me", &[&p[0], &p[1]]).await;
    assert!(resealed.duplicate);
    assert_eq!(resealed.seq, first.seq);
    assert_eq!(chat_events(&app).len(), 1);
    assert_eq!(stored_events(&app, chat.id), 2);
}

#[tokio::test]
async fn wraps_must_cover_exactly_the_current_members() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol", "dave"]).await;
    let (alice, bob, carol, dave) = (&p[0], &p[1], &p[2], &p[3]);
    let chat = create_group(&app, alice, &[bob, carol]).await;
    let token = alice.token();
    for (why, recipients) in [
        ("one missing", vec![alice, bob]),
        ("an outsider added", vec![alice, bob, carol, dave]),
        ("an outsider instead", vec![alice, bob, dave]),
    ] {
        let body = send_body(chat.id, alice, why, &recipients);
        assert_eq!(
            app.err("message.send", token, body).await,
            "invalid_envelope",
            "{why}"
        );
    }
    // after a member joins, an envelope for the old members no longer fits
    app.ok(
        "chat.add_members",
        token,
        json!({"chat_id": chat.id, "user_ids": [dave.id]}),
    )
    .await;
    let stale = send_body(chat.id, alice, "stale", &[alice, bob, carol]);
    assert_eq!(
        app.err("message.send", token, stale).await,
        "invalid_envelope"
    );
    send(&app, chat.id, alice, "fresh", &[alice, bob, carol, dave]).await;
    assert_eq!(stored_events(&app, chat.id), 3);
}

#[tokio::test]
async fn envelopes_must_come_from_the_caller_for_this_chat() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob"]).await;
    let (alice, bob) = (&p[0], &p[1]);
    let chat = create_group(&app, alice, &[bob]).await;
    let other = create_group(&app, alice, &[bob]).await;
    let members = [alice, bob];
    // bob's envelope, sent with alice's session: a forged sender
    let forged = json!({
        "chat_id": chat.id,
        "client_msg_id": "f",
        "envelope": seal(chat.id, bob, "f", "x", &members),
    });
    assert_eq!(
        app.err("message.send", alice.token(), forged).await,
        "invalid_envelope"
    );
    // sealed for another chat: a replay
    let replayed = json!({
        "chat_id": chat.id,
        "client_msg_id": "r",
        "envelope": seal(other.id, alice, "r", "x", &members),
    });
    assert_eq!(
        app.err("message.send", alice.token(), replayed).await,
        "invalid_envelope"
    );
    // the request's id must be the envelope's
    let mismatch = json!({
        "chat_id": chat.id,
        "client_msg_id": "a",
        "envelope": seal(chat.id, alice, "b", "x", &members),
    });
    assert_eq!(
        app.err("message.send", alice.token(), mismatch).await,
        "invalid_envelope"
    );
    for bad in [String::new(), "x".repeat(65), "a\tb".to_owned()] {
        let body = json!({
            "chat_id": chat.id,
            "client_msg_id": bad,
            "envelope": seal(chat.id, alice, "ok", "x", &members),
        });
        assert_eq!(
            app.err("message.send", alice.token(), body).await,
            "invalid_client_msg_id",
            "{bad:?}"
        );
    }
    // a tampered structure: wraps out of order
    let mut envelope = seal(chat.id, alice, "t", "x", &members);
    envelope.wraps.reverse();
    let body = json!({"chat_id": chat.id, "client_msg_id": "t", "envelope": envelope});
    assert_eq!(
        app.err("message.send", alice.token(), body).await,
        "invalid_envelope"
    );
    // unknown fields are refused
    let mut body = send_body(chat.id, alice, "u", &members);
    body["extra"] = json!(1);
    assert_eq!(
        app.err("message.send", alice.token(), body).await,
        "bad_request"
    );
    assert_eq!(stored_events(&app, chat.id), 1);
}

#[tokio::test]
async fn an_oversized_body_is_payload_too_large() {
    let app = TestApp::with_settings(|s| s.max_envelope_body_bytes = 200);
    let p = people(&app, &["alice", "bob"]).await;
    let chat = create_group(&app, &p[0], &[&p[1]]).await;
    let members = [&p[0], &p[1]];
    let big = json!({
        "chat_id": chat.id,
        "client_msg_id": "big",
        "envelope": seal(chat.id, &p[0], "big", &"x".repeat(300), &members),
    });
    assert_eq!(
        app.err("message.send", p[0].token(), big).await,
        "payload_too_large"
    );
    send(&app, chat.id, &p[0], "small", &members).await;
}

#[tokio::test]
async fn only_authors_edit_and_delete_their_live_messages() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob"]).await;
    let (alice, bob) = (&p[0], &p[1]);
    let members = [alice, bob];
    let chat = create_group(&app, alice, &[bob]).await;
    let mine = send(&app, chat.id, alice, "m1", &members).await;
    let edit = |who, id: &str, target_seq, recipients: &[&super::chat_support::Person]| {
        json!({
            "chat_id": chat.id,
            "target_seq": target_seq,
            "envelope": seal(chat.id, who, id, "edited", recipients),
        })
    };
    assert_eq!(
        app.err(
            "message.edit",
            bob.token(),
            edit(bob, "e1", mine.seq, &members)
        )
        .await,
        "not_message_author"
    );
    assert_eq!(
        app.err(
            "message.edit",
            alice.token(),
            edit(alice, "e1", Seq::new(1), &members)
        )
        .await,
        "message_not_found"
    );
    assert_eq!(
        app.err(
            "message.edit",
            alice.token(),
            edit(alice, "e1", mine.seq, &[alice])
        )
        .await,
        "invalid_envelope"
    );
    // the edit envelope needs its own id
    assert_eq!(
        app.err(
            "message.edit",
            alice.token(),
            edit(alice, "m1", mine.seq, &members)
        )
        .await,
        "invalid_client_msg_id"
    );
    app.notifier.take();
    let edited: MessageAck = serde_json::from_value(
        app.ok(
            "message.edit",
            alice.token(),
            edit(alice, "e1", mine.seq, &members),
        )
        .await,
    )
    .unwrap();
    assert_eq!((edited.seq, edited.duplicate), (mine.seq.next(), false));
    let announced = chat_events(&app);
    assert!(matches!(
        announced[0].1.body,
        EventBody::Edit { target_seq, .. } if target_seq == mine.seq
    ));

    let delete = json!({"chat_id": chat.id, "target_seq": mine.seq});
    assert_eq!(
        app.err("message.delete", bob.token(), delete.clone()).await,
        "not_message_author"
    );
    let deleted: MessageAck = serde_json::from_value(
        app.ok("message.delete", alice.token(), delete.clone())
            .await,
    )
    .unwrap();
    let again: MessageAck =
        serde_json::from_value(app.ok("message.delete", alice.token(), delete).await).unwrap();
    assert!(!deleted.duplicate && again.duplicate);
    assert_eq!(again.seq, deleted.seq);
    assert_eq!(
        app.err(
            "message.edit",
            alice.token(),
            edit(alice, "e2", mine.seq, &members)
        )
        .await,
        "message_not_found"
    );
    assert_eq!(
        app.err(
            "message.delete",
            alice.token(),
            json!({"chat_id": chat.id, "target_seq": edited.seq})
        )
        .await,
        "message_not_found"
    );
    // every stored change took the next seq
    assert_eq!(stored_events(&app, chat.id), 4);
}

#[tokio::test]
async fn history_pages_through_the_log_a_member_may_see() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&p[0], &p[1], &p[2]);
    let chat = create_group(&app, alice, &[bob]).await;
    for n in 0..6 {
        send(
            &app,
            chat.id,
            [alice, bob][n % 2],
            &format!("m{n}"),
            &[alice, bob],
        )
        .await;
    }
    // seqs 1 (created) to 7
    let h = |body| history(&app, bob, body);
    assert_eq!(
        h(json!({"chat_id": chat.id, "limit": 3})).await,
        (vec![5, 6, 7], true)
    );
    assert_eq!(
        h(json!({"chat_id": chat.id, "before_seq": 5, "limit": 3})).await,
        (vec![2, 3, 4], true)
    );
    assert_eq!(
        h(json!({"chat_id": chat.id, "before_seq": 2, "limit": 3})).await,
        (vec![1], false)
    );
    assert_eq!(
        h(json!({"chat_id": chat.id, "after_seq": 0, "limit": 4})).await,
        (vec![1, 2, 3, 4], true)
    );
    assert_eq!(
        h(json!({"chat_id": chat.id, "after_seq": 4})).await,
        (vec![5, 6, 7], false)
    );
    for limit in [0, 201] {
        assert_eq!(
            app.err(
                "message.history",
                bob.token(),
                json!({"chat_id": chat.id, "limit": limit})
            )
            .await,
            "bad_request"
        );
    }
    // a later member starts at the event that added them
    app.ok(
        "chat.add_members",
        alice.token(),
        json!({"chat_id": chat.id, "user_ids": [carol.id]}),
    )
    .await;
    send(&app, chat.id, alice, "welcome", &[alice, bob, carol]).await;
    assert_eq!(
        history(&app, carol, json!({"chat_id": chat.id})).await,
        (vec![8, 9], false)
    );
    let page = app
        .ok(
            "message.history",
            carol.token(),
            json!({"chat_id": chat.id}),
        )
        .await;
    let events: Vec<ChatEvent> = serde_json::from_value(page["events"].clone()).unwrap();
    assert_eq!(
        events[0].body,
        EventBody::MembersAdded {
            user_ids: vec![carol.id]
        }
    );
}

#[tokio::test]
async fn reading_moves_forwards_and_sends_receipts() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&p[0], &p[1], &p[2]);
    let all = [alice, bob, carol];
    let chat = create_group(&app, alice, &[bob, carol]).await;
    send(&app, chat.id, alice, "a", &all).await;
    let last = send(&app, chat.id, alice, "b", &all).await;
    app.notifier.take();
    let read = |seq: i64| json!({"chat_id": chat.id, "seq": seq});
    app.ok("message.read", bob.token(), read(2)).await;
    assert_eq!(
        live_events(&app),
        [(
            ids(&all),
            LiveEvent::ReadReceipt {
                chat_id: chat.id,
                user_id: bob.id,
                seq: Seq::new(2)
            }
        )]
    );
    // backwards: no change, no receipt
    app.ok("message.read", bob.token(), read(1)).await;
    assert!(app.notifier.take().is_empty());
    // past the end: capped at the last event
    app.ok("message.read", bob.token(), read(1000)).await;
    assert!(matches!(
        &live_events(&app)[..],
        [(_, LiveEvent::ReadReceipt { seq, .. })] if *seq == last.seq
    ));
    assert_eq!(
        app.err("message.read", bob.token(), read(-1)).await,
        "bad_request"
    );
    let chat_now = app
        .ok("chat.get", carol.token(), json!({"chat_id": chat.id}))
        .await;
    let bob_row = chat_now["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["id"] == bob.id.0)
        .unwrap()
        .clone();
    assert_eq!(bob_row["read_seq"], last.seq.get());
}

#[tokio::test]
async fn delivery_receipts_reach_the_senders_they_cover() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&p[0], &p[1], &p[2]);
    let all = [alice, bob, carol];
    let chat = create_group(&app, alice, &[bob, carol]).await;
    let from_alice = send(&app, chat.id, alice, "a", &all).await;
    let from_bob = send(&app, chat.id, bob, "b", &all).await;
    app.notifier.take();
    let upto = |seq: i64| json!({"chat_id": chat.id, "seq": seq});
    let receipt = |seq| LiveEvent::DeliveryReceipt {
        chat_id: chat.id,
        user_id: carol.id,
        seq,
    };
    // Carol's device has Alice's message: Alice (and Carol's own sessions)
    // hear it; Bob, whose message is not covered, does not.
    app.ok(
        "message.delivered",
        carol.token(),
        upto(from_alice.seq.get()),
    )
    .await;
    assert_eq!(
        live_events(&app),
        [(ids(&[alice, carol]), receipt(from_alice.seq))]
    );
    // Backwards or again: nothing moves, nobody is told.
    app.ok(
        "message.delivered",
        carol.token(),
        upto(from_alice.seq.get()),
    )
    .await;
    app.ok("message.delivered", carol.token(), upto(1)).await;
    assert!(app.notifier.take().is_empty());
    // Past the end: capped; now Bob's message is covered.
    app.ok("message.delivered", carol.token(), upto(1000)).await;
    assert_eq!(
        live_events(&app),
        [(ids(&[bob, carol]), receipt(from_bob.seq))]
    );
    assert_eq!(
        app.err("message.delivered", carol.token(), upto(-1)).await,
        "bad_request"
    );
    // chat.get and chat.list show the positions.
    let chat_now = app
        .ok("chat.get", alice.token(), json!({"chat_id": chat.id}))
        .await;
    let delivered: Vec<i64> = chat_now["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["delivered_seq"].as_i64().unwrap())
        .collect();
    // Members start at the event that added them (seq 1, the creation).
    assert_eq!(delivered, [1, 1, from_bob.seq.get()]);
    let list = app.ok("chat.list", alice.token(), json!({})).await;
    assert_eq!(list["chats"][0]["others_delivered_seq"], from_bob.seq.get());
    assert_eq!(list["chats"][0]["others_read_seq"], 1);
    // Reading implies delivery.
    app.ok("message.read", bob.token(), upto(from_bob.seq.get()))
        .await;
    let list = app.ok("chat.list", carol.token(), json!({})).await;
    assert_eq!(list["chats"][0]["others_read_seq"], from_bob.seq.get());
    assert_eq!(list["chats"][0]["others_delivered_seq"], from_bob.seq.get());
}

#[tokio::test]
async fn profile_changes_reach_who_shares_a_chat_and_my_sessions() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol", "dave"]).await;
    let (alice, bob, carol, _dave) = (&p[0], &p[1], &p[2], &p[3]);
    create_group(&app, alice, &[bob]).await;
    create_group(&app, carol, &[alice]).await;
    app.notifier.take();
    app.ok(
        "me.update",
        alice.token(),
        json!({"display_name": "Ada", "bio": "maths"}),
    )
    .await;
    let events = live_events(&app);
    let [(audience, LiveEvent::ProfileChanged { user })] = &events[..] else {
        panic!("one profile_changed event expected, got {events:?}");
    };
    // Dave shares no chat with Alice: he is not told.
    assert_eq!(*audience, ids(&[alice, bob, carol]));
    assert_eq!(
        (user.id, user.display_name.as_str(), user.bio.as_str()),
        (alice.id, "Ada", "maths")
    );
    // Nothing changed: nobody is told.
    app.ok("me.update", alice.token(), json!({"display_name": "Ada"}))
        .await;
    assert!(live_events(&app).is_empty());
}

#[tokio::test]
async fn a_removed_member_hears_and_reads_nothing_new() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&p[0], &p[1], &p[2]);
    let chat = create_group(&app, alice, &[bob, carol]).await;
    send(&app, chat.id, bob, "before", &[alice, bob, carol]).await;
    app.ok(
        "chat.remove_member",
        alice.token(),
        json!({"chat_id": chat.id, "user_id": bob.id}),
    )
    .await;
    app.notifier.take();
    send(&app, chat.id, carol, "after", &[alice, carol]).await;
    for (members, _) in chat_events(&app) {
        assert!(!members.contains(&bob.id));
    }
    assert_eq!(
        app.err("message.history", bob.token(), json!({"chat_id": chat.id}))
            .await,
        "not_a_member"
    );
    assert_eq!(
        app.err(
            "message.history",
            bob.token(),
            json!({"chat_id": chat.id, "after_seq": 0})
        )
        .await,
        "not_a_member"
    );
    assert!(super::chat_support::chat_list(&app, bob).await.is_empty());
}

#[tokio::test]
async fn history_after_a_seq_returns_exactly_what_was_missed() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob"]).await;
    let chat = create_group(&app, &p[0], &[&p[1]]).await;
    for n in 0..5 {
        send(&app, chat.id, &p[0], &format!("m{n}"), &[&p[0], &p[1]]).await;
    }
    let page = |after: i64, limit: u32| {
        super::chat_support::history(
            &app,
            &p[1],
            json!({"chat_id": chat.id, "after_seq": after, "limit": limit}),
        )
    };
    assert_eq!(page(3, 2).await, (vec![4, 5], true));
    assert_eq!(page(5, 100).await, (vec![6], false));
}

#[tokio::test]
async fn the_largest_send_fits_the_documented_request_size() {
    use crate::message::max_send_request_bytes;
    let settings = super::support::test_settings();
    // a full group, and a body at the limit (padding rounds up: stay below)
    let app = TestApp::new();
    let p = people(&app, &["alice"]).await;
    let alice = &p[0];
    let mut everyone = vec![alice.clone()];
    for n in 0..settings.max_group_members - 1 {
        let mut other = alice.clone();
        other.id = ferrogram_core::ids::UserId(1_000_000 + n as i64);
        everyone.push(other);
    }
    let recipients: Vec<&super::chat_support::Person> = everyone.iter().collect();
    let text = "x".repeat(settings.max_envelope_body_bytes - 200);
    let envelope = seal(ChatId(i64::MAX), alice, &"i".repeat(64), &text, &recipients);
    assert!(envelope.body.len() <= settings.max_envelope_body_bytes);
    let request =
        json!({"chat_id": i64::MAX, "client_msg_id": "i".repeat(64), "envelope": envelope});
    let size = request.to_string().len();
    let limit = max_send_request_bytes(&settings);
    assert!(size <= limit, "{size} > {limit}");
    // and the estimate is not wildly generous
    assert!(limit < size * 3 / 2, "{limit} vs {size}");
}
