//! Live signals: typing, read receipts, presence, joining and leaving.

use ferrogram_client::ClientEvent;

use ferrogram_test_support::{person, spawn_app, Device};

#[tokio::test]
async fn typing_and_read_receipts_arrive() {
    let app = spawn_app().await;
    let alice = person(&app, "tyalice", 0).await;
    let bob = person(&app, "tybob", 1).await;
    let mut a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    let chat = a.messenger.create_direct(bob.id).await.unwrap();

    b.messenger.typing(chat.id).await.unwrap();
    let (chat_id, user_id) = a
        .wait_for("typing", |e| match e {
            ClientEvent::Typing { chat_id, user_id } => Some((chat_id, user_id)),
            _ => None,
        })
        .await;
    assert_eq!((chat_id, user_id), (chat.id, bob.id));

    let ack = a.send(chat.id, "read me").await;
    let got = b.message().await;
    b.messenger.mark_read(chat.id, got.seq).await.unwrap();
    let receipt = a
        .wait_for("read receipt", |e| match e {
            ClientEvent::ReadReceipt {
                chat_id,
                user_id,
                seq,
            } if user_id == bob.id => Some((chat_id, seq)),
            _ => None,
        })
        .await;
    assert_eq!(receipt, (chat.id, ack.seq));
    let summary = a.messenger.list_chats().await.unwrap();
    assert_eq!(summary[0].unread_count, 0, "my own message is not unread");
    let summary = b.messenger.list_chats().await.unwrap();
    assert_eq!(summary[0].my_read_seq, ack.seq);
}

#[tokio::test]
async fn the_recipients_device_acknowledges_delivery_by_itself() {
    let app = spawn_app().await;
    let alice = person(&app, "dlalice", 0).await;
    let bob = person(&app, "dlbob", 1).await;
    let mut a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    let chat = a.messenger.create_direct(bob.id).await.unwrap();
    let delivered = |e: ClientEvent| match e {
        ClientEvent::DeliveryReceipt {
            chat_id,
            user_id,
            seq,
        } if user_id == bob.id => Some((chat_id, seq)),
        _ => None,
    };

    // Bob is online: his messenger stores the message and acknowledges it,
    // without Bob doing anything; Alice's "delivered" tick follows.
    let ack = a.send(chat.id, "are you there?").await;
    assert_eq!(b.message().await.seq, ack.seq);
    assert_eq!(
        a.wait_for("delivery receipt", delivered).await,
        (chat.id, ack.seq)
    );

    // Bob is offline: the message is stored but not delivered...
    let bob_store = b.store_dir.clone();
    drop(b);
    let later = a.send(chat.id, "call me").await;
    let summary = a.messenger.list_chats().await.unwrap();
    assert_eq!(summary[0].others_delivered_seq, ack.seq);
    assert!(summary[0].others_read_seq < later.seq);
    // ...until his device comes back and catches up.
    let mut b = Device::with_store(&app, &bob, bob_store).await;
    assert_eq!(b.message().await.seq, later.seq);
    assert_eq!(
        a.wait_for("delivery receipt after catching up", delivered)
            .await,
        (chat.id, later.seq)
    );
    let summary = a.messenger.list_chats().await.unwrap();
    assert_eq!(summary[0].others_delivered_seq, later.seq);
    let members = a.messenger.get_chat(chat.id).await.unwrap().members;
    let bob_row = members.iter().find(|m| m.user.id == bob.id).unwrap();
    // Delivered, not read: Bob has read nothing since the chat's creation.
    assert_eq!(
        (bob_row.delivered_seq, bob_row.read_seq),
        (later.seq, ferrogram_client::Seq::new(1))
    );
}

#[tokio::test]
async fn profile_changes_reach_people_who_share_a_chat() {
    let app = spawn_app().await;
    let alice = person(&app, "pcalice", 0).await;
    let bob = person(&app, "pcbob", 1).await;
    let a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    a.messenger.create_direct(bob.id).await.unwrap();
    let update = ferrogram_client::proto::UpdateProfileRequest {
        display_name: Some("Ada Lovelace".into()),
        bio: Some("analytical engines".into()),
        handle: None,
        who_can_add_me: None,
    };
    a.messenger.session().update_profile(update).await.unwrap();
    let profile = b
        .wait_for("profile change", |e| match e {
            ClientEvent::ProfileChanged(profile) if profile.id == alice.id => Some(profile),
            _ => None,
        })
        .await;
    assert_eq!(profile.display_name, "Ada Lovelace");
    assert_eq!(profile.bio, "analytical engines");
}

#[tokio::test]
async fn joining_a_group_and_presence_are_reported() {
    let app = spawn_app().await;
    let alice = person(&app, "pralice", 0).await;
    let bob = person(&app, "prbob", 1).await;
    let a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    b.open_to_groups().await;
    let chat = a
        .messenger
        .create_group("hello Bob", &[bob.id])
        .await
        .unwrap();
    let joined = b
        .wait_for("chat joined", |e| match e {
            ClientEvent::ChatJoined(summary) => Some(summary),
            _ => None,
        })
        .await;
    assert_eq!(joined.id, chat.id);
    assert_eq!(joined.title.as_deref(), Some("hello Bob"));

    let online = a.messenger.presence(&[bob.id]).await.unwrap();
    assert_eq!(online.len(), 1);
    assert!(online[0].online);

    b.messenger.leave_chat(chat.id).await.unwrap();
    b.wait_for("chat removed", |e| match e {
        ClientEvent::ChatRemoved { chat_id } if chat_id == chat.id => Some(()),
        _ => None,
    })
    .await;
    assert!(b.messenger.list_chats().await.unwrap().is_empty());
}
