//! A message that was acknowledged survives a `kill -9` of the server.
//!
//! The real `ferrogram-server` binary runs on a temporary data folder
//! (configured by environment variables, port 0 read from its startup
//! message). Alice sends a burst of messages through the client library; the
//! moment enough acknowledgments are in, the server is killed with SIGKILL
//! while further sends are still in flight. It is restarted on the same data
//! folder and port. Then every acknowledged message must be stored under the
//! seq it was acknowledged with, every message is stored exactly once (the
//! in-flight ones are retried with the same client message id), and Bob's
//! messenger, which reconnects by itself, receives each one exactly once and
//! in order.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferrogram_client::proto::MessagePayload;
use ferrogram_client::{
    ChatId, Client, ClientEvent, ClientOptions, Messenger, MessengerOptions, Seq, ServerAddr,
    Store, UserId,
};
use ferrogram_test_support::process::{server_command, ServerProcess};
use ferrogram_test_support::{identity, mail, wait_for_mails_in, TestUser, TEST_KDF};

/// Messages Alice sends in the burst.
const MESSAGES: usize = 120;
/// Acknowledgments after which the server is killed.
const KILL_AFTER_ACKS: usize = 10;

/// Starts the server binary on `data_dir` (port 0 the first time) and
/// waits for its startup message to learn the address.
fn start_server(data_dir: &Path, port: u16) -> ServerProcess {
    let cheap = TEST_KDF.m_cost_kib.to_string();
    let mut cmd = server_command(env!("CARGO_BIN_EXE_ferrogram-server"));
    cmd.env("FERROGRAM__DATA_DIR", data_dir)
        .env("FERROGRAM__SERVER__HOST", "127.0.0.1")
        .env("FERROGRAM__SERVER__PORT", port.to_string())
        .env("FERROGRAM__SERVER__WORKERS", "2")
        .env("FERROGRAM__SECURITY__AUTH_HASH__M_COST_KIB", &cheap)
        .env("FERROGRAM__SECURITY__AUTH_HASH__T_COST", "1")
        .env("FERROGRAM__SECURITY__MIN_CLIENT_KDF__M_COST_KIB", &cheap)
        .env("FERROGRAM__SECURITY__MIN_CLIENT_KDF__T_COST", "1")
        .env("FERROGRAM__MAIL__MAX_RETRIES", "0")
        // the burst is larger than a person's message rate
        .env(
            "FERROGRAM__LIMITS__RATE_LIMITS__SEND__PER_ACCOUNT__BURST",
            "100000",
        )
        .env("FERROGRAM__LOG__LEVEL", "warn");
    ServerProcess::start(cmd)
}

/// Registers and verifies `tag` (codes from the outbox), then logs in.
async fn account(client: &Client, data_dir: &Path, tag: &str, n: usize) -> (UserId, TestUser) {
    let user = TestUser::new(tag);
    let registered = client
        .register(user.params(identity(n)))
        .await
        .expect("register");
    let outbox = data_dir.join("outbox");
    wait_for_mails_in(&outbox, &user.email, 1).await;
    let code = mail::newest_to(&outbox, &user.email)
        .and_then(|m| m.code())
        .expect("code in the mail");
    client
        .verify_code(&user.email, &code)
        .await
        .expect("verify");
    (registered.user_id, user)
}

async fn messenger(client: &Client, user: &TestUser, store: PathBuf, id: UserId) -> Messenger {
    let session = client
        .login(&user.email, &user.password, Some("durability test"))
        .await
        .expect("login");
    let store = Store::open(store, id).unwrap();
    let options = MessengerOptions {
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_millis(500),
        request_timeout: Duration::from_secs(10),
        send_deadline: Duration::from_secs(60),
        ..MessengerOptions::default()
    };
    let (messenger, _) = Messenger::connect(Arc::new(session), Some(store), options)
        .await
        .expect("messenger connects");
    messenger
        .wait_synced(Duration::from_secs(15))
        .await
        .expect("synced");
    messenger
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_a_sigkill_and_arrive_once() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = start_server(&data_dir, 0);
    let port = server.addr.port();
    assert_ne!(port, 0);
    let options = ClientOptions {
        kdf_override: Some(TEST_KDF),
        ..ClientOptions::default()
    };
    let client = Client::connect_with(ServerAddr::from(server.addr), options)
        .await
        .unwrap();
    let (alice_id, alice) = account(&client, &data_dir, "duralice", 0).await;
    let (bob_id, bob) = account(&client, &data_dir, "durbob", 1).await;
    let a = messenger(&client, &alice, dir.path().join("alice.sqlite3"), alice_id).await;
    let b = messenger(&client, &bob, dir.path().join("bob.sqlite3"), bob_id).await;
    let mut bob_events = b.subscribe();
    let chat: ChatId = a.create_direct(bob_id).await.unwrap().id;

    // The burst: every send in its own task. The task that gets the
    // KILL_AFTER_ACKS-th acknowledgment kills the server at once, while the
    // other sends are still on their way.
    let server = Arc::new(std::sync::Mutex::new(Some(server)));
    let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (acks_tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let mut outgoing = Vec::new();
    for i in 0..MESSAGES {
        outgoing.push(
            a.prepare(chat, MessagePayload::text(format!("durable {i}")))
                .await
                .unwrap(),
        );
    }
    let mut sends = Vec::new();
    for message in outgoing {
        let sender = a.clone();
        let acks_tx = acks_tx.clone();
        let server = Arc::clone(&server);
        let acked = Arc::clone(&acked);
        sends.push(tokio::spawn(async move {
            let ack = sender.send_prepared(&message).await;
            if let Ok(ack) = &ack {
                // Recorded before the kill can happen: this one was acknowledged.
                let _ = acks_tx.send((message.client_msg_id.clone(), ack.seq));
                if acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == KILL_AFTER_ACKS {
                    if let Some(server) = server.lock().unwrap().take() {
                        server.kill_9();
                    }
                }
            }
            (message.client_msg_id, ack)
        }));
    }
    drop(acks_tx);
    let mut acked_before_kill: BTreeMap<String, Seq> = BTreeMap::new();
    while acked_before_kill.len() < KILL_AFTER_ACKS {
        let (id, seq) = acks.recv().await.expect("acknowledgments");
        acked_before_kill.insert(id, seq);
    }
    while server.lock().unwrap().is_some() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Acknowledgments that raced the kill count too: the server sent them.
    while let Ok((id, seq)) = acks.try_recv() {
        acked_before_kill.insert(id, seq);
    }
    println!(
        "killed after {} of {MESSAGES} acknowledgments",
        acked_before_kill.len()
    );

    // Same data folder, same port: the clients reconnect by themselves and
    // the sends still in flight are retried with their client message ids.
    let restarted = start_server(&data_dir, port);
    assert_eq!(restarted.addr.port(), port);
    let mut stored_ids = HashSet::new();
    for send in sends {
        let (id, ack) = send.await.unwrap();
        let ack = ack.unwrap_or_else(|e| panic!("send {id} failed across the restart: {e}"));
        if let Some(seq) = acked_before_kill.get(&id) {
            assert_eq!(ack.seq, *seq, "{id} moved from seq {seq} to {}", ack.seq);
        }
        assert!(stored_ids.insert(id));
    }

    // The server's log holds every message once, acknowledged ones at their seq.
    let mut history = Vec::new();
    let mut after = Seq::ZERO;
    loop {
        let page = b.history(chat, None, Some(after), 200).await.unwrap();
        after = page
            .entries
            .last()
            .map_or(after, ferrogram_client::ChatEntry::seq);
        history.extend(page.messages());
        if !page.more {
            break;
        }
    }
    assert_eq!(history.len(), MESSAGES, "messages stored");
    let by_id: BTreeMap<&str, Seq> = history
        .iter()
        .map(|m| (m.client_msg_id.as_str(), m.seq))
        .collect();
    assert_eq!(by_id.len(), MESSAGES, "a message was stored twice");
    for (id, seq) in &acked_before_kill {
        assert_eq!(by_id.get(id.as_str()), Some(seq), "acknowledged {id} lost");
    }
    assert!(history.iter().all(|m| m.verification.is_trusted()));

    // Bob got each message exactly once, in seq order, across the crash.
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while received.len() < MESSAGES {
        let event = tokio::time::timeout_at(deadline, bob_events.next())
            .await
            .unwrap_or_else(|_| panic!("Bob has {} of {MESSAGES}", received.len()))
            .expect("events");
        if let ClientEvent::MessageReceived(m) = event {
            received.push(m);
        }
    }
    // Nothing more comes before a marker sent last (events of a chat come in
    // seq order, so a duplicate would come before it).
    let marker = a
        .send(chat, MessagePayload::text("marker"))
        .await
        .unwrap()
        .seq;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), bob_events.next())
            .await
            .expect("the marker in time")
            .expect("events");
        if let ClientEvent::MessageReceived(m) = event {
            assert_eq!(m.seq, marker, "duplicate: {m:?}");
            break;
        }
    }
    let seqs: Vec<Seq> = received.iter().map(|m| m.seq).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(seqs, sorted, "out of order or twice");
    let texts: HashSet<String> = received
        .iter()
        .map(|m| m.text().unwrap().to_owned())
        .collect();
    assert_eq!(texts.len(), MESSAGES);
    assert!(a.store().is_some());
    drop(restarted);
}
