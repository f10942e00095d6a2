//! Delivery guarantees: what an offline member missed arrives on reconnect
//! exactly once and in order; a retried send is stored once; the messenger
//! reconnects by itself; a removed member reads nothing new.

use std::sync::Arc;
use std::time::Duration;

use ferrogram_client::proto::MessagePayload;
use ferrogram_client::{ChatChangeKind, ClientEvent, ConnectionState, ErrorCode};

use ferrogram_test_support::{
    free_port, person, spawn_app, spawn_app_with, Device, TestApp, EVENT_TIMEOUT,
};

#[tokio::test]
async fn an_offline_member_gets_everything_on_reconnect_exactly_once() {
    let app = spawn_app().await;
    let alice = person(&app, "offalice", 0).await;
    let bob = person(&app, "offbob", 1).await;
    let a = Device::new(&app, &alice).await;
    let chat = a.messenger.create_direct(bob.id).await.unwrap();

    // Bob has never been online: his first connection gets the whole backlog.
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(a.send(chat.id, &format!("while away {i}")).await.seq);
    }
    let mut b = Device::new(&app, &bob).await;
    // A marker sent last: everything before it arrives before it.
    let marker = a.send(chat.id, "marker 1").await.seq;
    let got = b.messages_through(chat.id, marker).await;
    sent.push(marker);
    assert_eq!(got.iter().map(|m| m.seq).collect::<Vec<_>>(), sent);
    assert_eq!(got[4].text(), Some("while away 4"));
    let store_dir = Arc::clone(&b.store_dir);
    drop(b);

    // Offline again; three more. Back with the same store: only those three,
    // in order, once, although the earlier five are still on the server.
    let mut later = Vec::new();
    for i in 0..3 {
        later.push(a.send(chat.id, &format!("second absence {i}")).await.seq);
    }
    // A message Bob sends from another device while this one is away comes too.
    let mut phone = Device::new(&app, &bob).await;
    let from_phone = phone.send(chat.id, "sent from the phone").await.seq;
    later.push(from_phone);
    let mut b = Device::with_store(&app, &bob, store_dir).await;
    let marker = a.send(chat.id, "marker 2").await.seq;
    let got = b.messages_through(chat.id, marker).await;
    later.push(marker);
    assert_eq!(got.iter().map(|m| m.seq).collect::<Vec<_>>(), later);
    assert_eq!(got[3].sender, bob.id);
    assert!(got[3].verification == ferrogram_client::Verification::Own);
    // The phone (a new device: it got the whole backlog) saw its own message too.
    let own = phone
        .wait_for("own message", |e| match e {
            ClientEvent::MessageReceived(m) if m.seq == from_phone => Some(m),
            _ => None,
        })
        .await;
    assert_eq!(own.verification, ferrogram_client::Verification::Own);

    // Live again: new messages arrive live, still once.
    let live = a.send(chat.id, "live now").await.seq;
    let marker = a.send(chat.id, "marker 3").await.seq;
    let got = b.messages_through(chat.id, marker).await;
    assert_eq!(
        got.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [live, marker]
    );
    let stored = b
        .messenger
        .stored_messages(chat.id, None, 100)
        .await
        .unwrap();
    // 5 + 4 + 1 messages and 3 markers.
    assert_eq!(
        stored.len(),
        13,
        "{:#?}",
        stored.iter().map(|m| (m.seq, m.text())).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_retried_send_is_stored_once() {
    let app = spawn_app().await;
    let alice = person(&app, "retryalice", 0).await;
    let bob = person(&app, "retrybob", 1).await;
    let a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    let chat = a.messenger.create_direct(bob.id).await.unwrap();

    let outgoing = a
        .messenger
        .prepare(chat.id, MessagePayload::text("only once"))
        .await
        .unwrap();
    let first = a.messenger.send_prepared(&outgoing).await.unwrap();
    // The acknowledgment was "lost": the client sends the same message again.
    let again = a.messenger.send_prepared(&outgoing).await.unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(first.seq, again.seq);

    let marker = a.send(chat.id, "marker").await.seq;
    let got = b.messages_through(chat.id, marker).await;
    assert_eq!(
        got.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [first.seq, marker],
        "{got:?}"
    );
    let history = b
        .messenger
        .history(chat.id, None, None, 50)
        .await
        .unwrap()
        .messages();
    let copies = history
        .iter()
        .filter(|m| m.client_msg_id == outgoing.client_msg_id)
        .count();
    assert_eq!(copies, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messenger_reconnects_and_a_send_during_the_outage_is_stored_once() {
    let port = free_port();
    let app = spawn_app_with(|c| c.server.port = port).await;
    let alice = person(&app, "rcalice", 0).await;
    let bob = person(&app, "rcbob", 1).await;
    let mut a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    let chat = a.messenger.create_direct(bob.id).await.unwrap();
    a.send(chat.id, "before the outage").await;
    b.message().await;

    // Stop the server; both messengers notice and keep trying.
    let restart = tokio::task::spawn_blocking(move || {
        let stopped = {
            let TestApp {
                server,
                config,
                dir,
                ..
            } = app;
            server.stop();
            (config, dir)
        };
        std::thread::sleep(Duration::from_millis(1500));
        stopped
    });
    a.wait_for("reconnecting", |e| {
        matches!(
            e,
            ClientEvent::Connection(ConnectionState::Reconnecting { .. })
        )
        .then_some(())
    })
    .await;
    // Sent while the server is down: it goes out once it is back.
    let sender = a.messenger.clone();
    let send = tokio::spawn(async move {
        sender
            .send(chat.id, MessagePayload::text("during the outage"))
            .await
    });
    let (config, dir) = restart.await.unwrap();
    let server = ferrogram_server::startup::spawn_background(config).expect("server restarts");
    assert_eq!(server.addr.port(), port);

    let ack = send
        .await
        .unwrap()
        .expect("the send went through after the restart");
    let got = b.message().await;
    assert_eq!(got.seq, ack.seq);
    assert_eq!(got.text(), Some("during the outage"));
    // Once: the next message is a later one.
    let marker = a.send(chat.id, "after the restart").await.seq;
    assert_eq!(b.message().await.seq, marker);
    assert_eq!(b.messenger.connection_state(), ConnectionState::Connected);
    a.messenger
        .wait_synced(EVENT_TIMEOUT)
        .await
        .expect("alice is back");
    drop((server, dir));
}

#[tokio::test]
async fn a_removed_member_cannot_read_new_messages() {
    let app = spawn_app().await;
    let alice = person(&app, "rmalice", 0).await;
    let bob = person(&app, "rmbob", 1).await;
    let carol = person(&app, "rmcarol", 2).await;
    let a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    let mut c = Device::new(&app, &carol).await;
    b.open_to_groups().await;
    c.open_to_groups().await;
    let chat = a
        .messenger
        .create_group("soon two", &[bob.id, carol.id])
        .await
        .unwrap();
    a.send(chat.id, "all three of us").await;
    assert_eq!(c.message().await.text(), Some("all three of us"));
    b.message().await;

    a.messenger.remove_member(chat.id, carol.id).await.unwrap();
    c.wait_for("removal", |e| match e {
        ClientEvent::ChatRemoved { chat_id } if chat_id == chat.id => Some(()),
        ClientEvent::ChatChanged(change)
            if matches!(change.change, ChatChangeKind::MemberRemoved { user_id } if user_id == carol.id) =>
        {
            Some(())
        }
        _ => None,
    })
    .await;

    // Sealed for Alice and Bob only (the server refuses anything else).
    a.send(chat.id, "just the two of us").await;
    assert_eq!(b.message().await.text(), Some("just the two of us"));
    assert!(c
        .drain_messages(Duration::from_millis(700))
        .await
        .is_empty());
    let refused = c
        .messenger
        .history(chat.id, None, None, 50)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::NotAMember));
    let refused = c
        .messenger
        .send(chat.id, MessagePayload::text("let me in"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::NotAMember));
    // Her store keeps what she legitimately received, nothing newer.
    let kept = c
        .messenger
        .stored_messages(chat.id, None, 10)
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
}
