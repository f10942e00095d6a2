//! Big accounts: the first sync pages through `chat.list` (each reply under
//! `limits.max_reply_bytes`) and splits its `resume` into frames the server
//! accepts (`limits.max_resume_chats`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrogram_client::{ClientEvent, Messenger, MessengerOptions, Store};

use ferrogram_test_support::{person, spawn_app_with, test_options, Device};

#[tokio::test]
async fn the_first_sync_pages_through_chat_list_and_gets_every_chat_and_message() {
    let app = spawn_app_with(|c| c.limits.max_reply_bytes = 65_536).await;
    let alice = person(&app, "pagealice", 0).await;
    let bob = person(&app, "pagebob", 1).await;
    let a = Device::new(&app, &alice).await;
    // Bob lets Alice add him (else each group would be an invitation); the
    // device that says so is not the one whose first sync is tested.
    Device::new(&app, &bob).await.open_to_groups().await;
    // 12 chats whose last message is ~20 KB: about 3 per page of 64 KiB.
    let big = "y".repeat(15_000);
    let mut chats = Vec::new();
    for n in 0..12 {
        let chat = a
            .messenger
            .create_group(&format!("big {n}"), &[bob.id])
            .await
            .unwrap();
        a.send(chat.id, &format!("{n} {big}")).await;
        chats.push(chat.id);
    }

    let mut b = Device::new(&app, &bob).await;
    let listed = b.messenger.list_chats().await.unwrap();
    let newest_first: Vec<_> = chats.iter().rev().copied().collect();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        newest_first
    );
    let got = b.drain_messages(Duration::from_millis(500)).await;
    assert_eq!(got.len(), 12);
    for chat in &chats {
        let stored = b.messenger.stored_messages(*chat, None, 10).await.unwrap();
        assert_eq!(stored.len(), 1, "chat {chat}");
        assert!(stored[0].text().unwrap().ends_with(&big));
    }
}

#[tokio::test]
async fn a_first_sync_of_more_chats_than_one_resume_frame_takes_is_split() {
    const CHATS: usize = 1001;
    let app = spawn_app_with(|c| c.limits.max_resume_chats = 1000).await;
    let alice = person(&app, "splitalice", 0).await;
    let bob = person(&app, "splitbob", 1).await;
    let a = Device::new(&app, &alice).await;
    Device::new(&app, &bob).await.open_to_groups().await;
    let mut chats = Vec::new();
    for n in 0..CHATS {
        let chat = a
            .messenger
            .create_group(&format!("g{n}"), &[bob.id])
            .await
            .unwrap();
        chats.push(chat.id);
    }

    // Bob's first device: every chat has something new (its `created`), so
    // all 1001 are resumed; one frame of 1001 would be refused and the sync
    // would never finish.
    let session = Arc::new(app.login(&bob.user).await);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store.sqlite3"), bob.id).unwrap();
    let options = MessengerOptions {
        event_capacity: 4 * CHATS,
        ..test_options()
    };
    let (messenger, mut events) = Messenger::connect(session, Some(store), options)
        .await
        .unwrap();
    let started = Instant::now();
    messenger
        .wait_synced(Duration::from_secs(120))
        .await
        .expect("synced");
    eprintln!("first sync of {CHATS} chats: {:?}", started.elapsed());
    let listed = messenger.list_chats().await.unwrap();
    assert_eq!(listed.len(), CHATS);
    // Every chat's `created` event was processed (the chat is in the store).
    let mut created = 0;
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(500), events.next()).await
    {
        match event {
            ClientEvent::ChatChanged(_) => created += 1,
            ClientEvent::Lagged { .. } => panic!("events were lost"),
            _ => {}
        }
    }
    assert_eq!(created, CHATS);
    drop(a);
}
