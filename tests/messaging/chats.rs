//! 1:1 and group chats: every member reads every message, decrypted and
//! trusted; edits, deletions, chat changes and safety numbers.

use ferrogram_client::proto::{
    ChatKind, Envelope, EventBody, HistoryPage, HistoryRequest, MessagePayload, Role,
};
use ferrogram_client::{ChatChangeKind, ClientEvent, Verification};
use ferrogram_core::crypto::envelope::open_payload;

use ferrogram_test_support::{person, spawn_app, Device};

#[tokio::test]
async fn a_direct_chat_carries_messages_both_ways() {
    let app = spawn_app().await;
    let alice = person(&app, "dmalice", 0).await;
    let bob = person(&app, "dmbob", 1).await;
    let mut a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;

    let chat = a.messenger.create_direct(bob.id).await.unwrap();
    assert_eq!(chat.kind, ChatKind::Direct);
    // The direct chat is one per pair, whoever asks.
    assert_eq!(
        b.messenger.create_direct(alice.id).await.unwrap().id,
        chat.id
    );

    let ack = a.send(chat.id, "hello Bob 👋 *markdown*").await;
    assert!(!ack.duplicate);
    let got = b.message().await;
    assert_eq!(
        (got.chat_id, got.seq, got.sender),
        (chat.id, ack.seq, alice.id)
    );
    assert_eq!(got.text(), Some("hello Bob 👋 *markdown*"));
    assert_eq!(got.verification, Verification::Trusted);
    // The sender's own device gets its message back, as its own.
    let own = a.message().await;
    assert_eq!((own.seq, own.verification), (ack.seq, Verification::Own));

    let reply = b
        .messenger
        .send(
            chat.id,
            MessagePayload {
                reply_to: Some(ack.seq),
                ..MessagePayload::text("hi Alice")
            },
        )
        .await
        .unwrap();
    let got = a.message_from_others().await;
    assert_eq!((got.seq, got.sender), (reply.seq, bob.id));
    assert_eq!(got.payload.unwrap().reply_to, Some(ack.seq));
    assert_eq!(b.message().await.seq, reply.seq, "Bob's own copy");

    // Both local stores hold both messages, decrypted.
    for device in [&a, &b] {
        let stored = device
            .messenger
            .stored_messages(chat.id, None, 10)
            .await
            .unwrap();
        let texts: Vec<_> = stored.iter().filter_map(|m| m.text()).collect();
        assert_eq!(texts, ["hello Bob 👋 *markdown*", "hi Alice"]);
    }
    // History from the server decrypts the same way.
    let history = b.messenger.history(chat.id, None, None, 50).await.unwrap();
    let messages = history.messages();
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().all(|m| m.verification.is_trusted()));
    assert_eq!(messages[0].verification, Verification::Trusted);
    assert_eq!(messages[1].verification, Verification::Own);
}

#[tokio::test]
async fn a_group_of_three_all_read_every_message() {
    let app = spawn_app().await;
    let people = [
        person(&app, "grpa", 0).await,
        person(&app, "grpb", 1).await,
        person(&app, "grpc", 2).await,
    ];
    let mut devices = Vec::new();
    for p in &people {
        devices.push(Device::new(&app, p).await);
    }
    for device in &devices[1..] {
        device.open_to_groups().await;
    }
    let chat = devices[0]
        .messenger
        .create_group("Three of us", &[people[1].id, people[2].id])
        .await
        .unwrap();
    assert_eq!(chat.members.len(), 3);

    let mut acks = Vec::new();
    for (i, device) in devices.iter().enumerate() {
        acks.push(device.send(chat.id, &format!("message from {i}")).await);
    }
    for device in &mut devices {
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(device.message().await);
        }
        got.sort_by_key(|m| m.seq);
        let texts: Vec<_> = got.iter().map(|m| m.text().unwrap().to_owned()).collect();
        assert_eq!(
            texts,
            ["message from 0", "message from 1", "message from 2"]
        );
        let senders: Vec<_> = got.iter().map(|m| m.sender).collect();
        assert_eq!(senders, [people[0].id, people[1].id, people[2].id]);
        assert!(got.iter().all(|m| m.verification.is_trusted()), "{got:?}");
        // Exactly once: no further message comes before the rename below (a
        // later event of the chat; events of a chat come in seq order).
    }

    // Each member's copy holds only its own key wrap and its proof
    // (envelope version 2), in history as live, and still opens.
    for (device, me) in devices.iter().zip(&people) {
        let page: HistoryPage = device
            .messenger
            .call::<ferrogram_core::commands::GetHistory>(&HistoryRequest {
                chat_id: chat.id,
                before_seq: None,
                after_seq: None,
                limit: None,
            })
            .await
            .unwrap();
        let envelopes: Vec<&Envelope> = page
            .events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Message { envelope, .. } => Some(envelope),
                _ => None,
            })
            .collect();
        assert_eq!(envelopes.len(), 3);
        for envelope in envelopes {
            assert_eq!(envelope.wraps.len(), 1);
            assert_eq!(envelope.wraps[0].user_id, me.id);
            assert_eq!(envelope.wrap_proof.as_ref().map(|p| p.count), Some(3));
            let sender = people
                .iter()
                .find(|p| p.id == envelope.header.sender)
                .unwrap();
            let payload = open_payload(
                envelope,
                me.id,
                &me.identity,
                &sender.identity.public_keys(),
            )
            .unwrap();
            assert!(payload.text.starts_with("message from "));
        }
    }

    // Chat changes reach everyone as events.
    devices[0]
        .messenger
        .rename_chat(chat.id, "Renamed")
        .await
        .unwrap();
    devices[0]
        .messenger
        .set_role(chat.id, people[1].id, Role::Admin)
        .await
        .unwrap();
    for device in &mut devices {
        let title = device
            .wait_for("rename", |e| match e {
                ClientEvent::ChatChanged(c) => match c.change {
                    ChatChangeKind::Renamed { title } => Some(title),
                    _ => None,
                },
                ClientEvent::MessageReceived(m) => panic!("a message came twice: {m:?}"),
                _ => None,
            })
            .await;
        assert_eq!(title, "Renamed");
        let role = device
            .wait_for("role change", |e| match e {
                ClientEvent::ChatChanged(c) => match c.change {
                    ChatChangeKind::RoleChanged { role, .. } => Some(role),
                    _ => None,
                },
                _ => None,
            })
            .await;
        assert_eq!(role, Role::Admin);
    }
    let list = devices[2].messenger.list_chats().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].title.as_deref(), Some("Renamed"));
}

#[tokio::test]
async fn edits_and_deletions_reach_the_other_side_and_the_store() {
    let app = spawn_app().await;
    let alice = person(&app, "edalice", 0).await;
    let bob = person(&app, "edbob", 1).await;
    let a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    let chat = a.messenger.create_direct(bob.id).await.unwrap();
    let first = a.send(chat.id, "teh typo").await;
    let second = a.send(chat.id, "regrettable").await;
    b.message().await;
    b.message().await;

    a.messenger
        .edit(chat.id, first.seq, MessagePayload::text("the typo"))
        .await
        .unwrap();
    let edit = b
        .wait_for("edit", |e| match e {
            ClientEvent::MessageEdited(edit) => Some(edit),
            _ => None,
        })
        .await;
    assert_eq!(edit.target_seq, first.seq);
    assert_eq!(edit.payload.unwrap().text, "the typo");
    assert_eq!(edit.verification, ferrogram_client::Verification::Trusted);

    a.messenger.delete(chat.id, second.seq).await.unwrap();
    let deletion = b
        .wait_for("deletion", |e| match e {
            ClientEvent::MessageDeleted(d) => Some(d),
            _ => None,
        })
        .await;
    assert_eq!(deletion.target_seq, second.seq);

    let stored = b
        .messenger
        .stored_messages(chat.id, None, 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].text(), Some("the typo"));
    assert!(stored[0].edited_seq.is_some());
    assert!(stored[1].deleted && stored[1].payload.is_none());
    // Only the author edits.
    let err = b
        .messenger
        .edit(chat.id, first.seq, MessagePayload::text("mine now"))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(ferrogram_client::ErrorCode::NotMessageAuthor)
    );
}

#[tokio::test]
async fn safety_numbers_match_and_verified_contacts_are_marked() {
    let app = spawn_app().await;
    let alice = person(&app, "snalice", 0).await;
    let bob = person(&app, "snbob", 1).await;
    let a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    let from_alice = a.messenger.safety_number(bob.id).await.unwrap();
    let from_bob = b.messenger.safety_number(alice.id).await.unwrap();
    assert_eq!(from_alice, from_bob);
    assert_eq!(from_alice.split(' ').count(), 12);

    let keys = b.messenger.contact_keys(alice.id).await.unwrap();
    assert_eq!(keys.fingerprint, alice.identity.fingerprint());
    assert!(!keys.verified && keys.pending_fingerprint.is_none());
    b.messenger.mark_verified(alice.id).await.unwrap();
    assert!(b.messenger.contact_keys(alice.id).await.unwrap().verified);

    let chat = a.messenger.create_direct(bob.id).await.unwrap();
    a.send(chat.id, "compared in person").await;
    let got = b.message().await;
    assert_eq!(got.verification, Verification::Verified);
}
