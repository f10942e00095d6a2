//! What the server stores is ciphertext; tampered envelopes, forged senders
//! and replaced public keys are refused by the server or flagged by the
//! receiving client, never shown as trusted.

use std::path::Path;
use std::time::Duration;

use ferrogram_client::proto::{EnvelopeHeader, MessagePayload, SendMessageRequest};
use ferrogram_client::{ClientEvent, ErrorCode, MessengerError, Verification};
use ferrogram_core::commands::SendMessage;
use ferrogram_core::crypto::envelope::{seal_payload, MemberViews};
use ferrogram_core::crypto::Identity;
use ferrogram_core::ids::{ChatId, Timestamp};

use ferrogram_test_support::{marker, person, spawn_app, Device, Person, TestApp};

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[tokio::test]
async fn the_server_stores_no_plaintext() {
    let app = spawn_app().await;
    let alice = person(&app, "ptalice", 0).await;
    let bob = person(&app, "ptbob", 1).await;
    let a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    let chat = a.messenger.create_direct(bob.id).await.unwrap();
    let secret = marker("plaintext-marker");
    let outgoing = a
        .messenger
        .prepare(chat.id, MessagePayload::text(&secret))
        .await
        .unwrap();
    a.messenger.send_prepared(&outgoing).await.unwrap();
    assert_eq!(b.message().await.text(), Some(secret.as_str()));

    let db = app.config.database_path();
    let wal = db.with_extension("db-wal");
    assert!(db.exists());
    // The search works: the message's id (stored in the clear) is found in
    // the database or its write-ahead log.
    let id_hits = files_containing(&app.config.data_dir, outgoing.client_msg_id.as_bytes());
    assert!(
        id_hits
            .iter()
            .any(|f| f == &db.display().to_string() || f == &wal.display().to_string()),
        "client_msg_id not found in {} or its WAL: {id_hits:?}",
        db.display()
    );
    // The text is nowhere in the server's data folder: database, WAL,
    // command log, outbox.
    let hits = files_containing(&app.config.data_dir, secret.as_bytes());
    assert!(hits.is_empty(), "plaintext found in {hits:?}");
    // It is in the receiver's own store, where it belongs.
    let store = b.messenger.store().unwrap().path().to_owned();
    assert!(!files_containing(store.parent().unwrap(), secret.as_bytes()).is_empty());
}

/// What is changed, and how.
type Tamper = (&'static str, fn(&mut ferrogram_client::proto::Envelope));

async fn flagged_message(device: &mut Device) -> (Option<String>, String) {
    let got = device.message_from_others().await;
    match got.verification {
        Verification::Invalid { reason } => (got.payload.map(|p| p.text), reason),
        other => panic!(
            "expected a flagged message, got {other:?} with {:?}",
            got.payload
        ),
    }
}

#[tokio::test]
async fn tampered_envelopes_are_flagged_by_the_receiver() {
    let app = spawn_app().await;
    let alice = person(&app, "tmalice", 0).await;
    let bob = person(&app, "tmbob", 1).await;
    let a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    let chat = a.messenger.create_direct(bob.id).await.unwrap();

    let tamperings: [Tamper; 4] = [
        ("body", |e| e.body.0[0] ^= 0x01),
        ("signature", |e| {
            let last = e.signature.0.len() - 1;
            e.signature.0[last] ^= 0x80;
        }),
        ("wrapped key", |e| e.wraps[0].wrapped_key.0[5] ^= 0x10),
        ("time", |e| {
            e.header.sent_at = e.header.sent_at.saturating_add_ms(1);
        }),
    ];
    for (what, tamper) in tamperings {
        let mut outgoing = a
            .messenger
            .prepare(chat.id, MessagePayload::text(format!("tampered {what}")))
            .await
            .unwrap();
        tamper(&mut outgoing.envelope);
        // The server checks structure only: it stores it...
        a.messenger.send_prepared(&outgoing).await.unwrap();
        // ...and the receiver refuses to trust it, without any plaintext.
        let (payload, reason) = flagged_message(&mut b).await;
        assert_eq!(payload, None, "{what}");
        assert!(reason.contains("signature"), "{what}: {reason}");
    }
    // Untampered messages still pass.
    a.send(chat.id, "intact").await;
    let ok = b.message_from_others().await;
    assert_eq!(ok.verification, Verification::Trusted);
}

/// An envelope sealed by `signer` for `members`, in `sender`'s name.
fn forged(
    chat: ChatId,
    sender: &Person,
    signer: &Identity,
    members: &[&Person],
    text: &str,
) -> SendMessageRequest {
    let client_msg_id = format!("forged-{:x}", rand::random::<u64>());
    let header = EnvelopeHeader {
        chat_id: chat,
        sender: sender.id,
        client_msg_id: client_msg_id.clone(),
        sent_at: Timestamp::now(),
    };
    let recipients: Vec<_> = members
        .iter()
        .map(|p| (p.id, p.identity.public_keys()))
        .collect();
    let envelope = seal_payload(
        &MessagePayload::text(text),
        header,
        signer,
        &recipients,
        &mut rand::rng(),
    )
    .unwrap();
    SendMessageRequest {
        chat_id: chat,
        client_msg_id,
        envelope,
    }
}

#[tokio::test]
async fn forged_senders_are_refused_or_flagged() {
    let app = spawn_app().await;
    let alice = person(&app, "fgalice", 0).await;
    let bob = person(&app, "fgbob", 1).await;
    let mallory = person(&app, "fgmallory", 3).await;
    let a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    let m = Device::new(&app, &mallory).await;
    b.open_to_groups().await;
    m.open_to_groups().await;
    let chat = a
        .messenger
        .create_group("with mallory", &[bob.id, mallory.id])
        .await
        .unwrap();
    let everyone = [&alice, &bob, &mallory];
    // Alice has written before, so Bob has her key pinned.
    a.send(chat.id, "the real Alice").await;
    assert_eq!(
        b.message_from_others().await.verification,
        Verification::Trusted
    );

    // In Alice's name: the server refuses (the header must name the caller).
    let request = forged(chat.id, &alice, &mallory.identity, &everyone, "I am Alice");
    let err = m.messenger.call::<SendMessage>(&request).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidEnvelope), "{err}");

    // In her own name but claiming Alice's key: stored, and flagged.
    let mut request = forged(chat.id, &mallory, &mallory.identity, &everyone, "trust me");
    request.envelope.sender_key.0 =
        ferrogram_core::crypto::fingerprint::fingerprint_bytes(&alice.identity.public_keys())
            .to_vec();
    m.messenger.call::<SendMessage>(&request).await.unwrap();
    let (payload, reason) = flagged_message(&mut b).await;
    assert_eq!(payload, None);
    assert!(reason.contains("does not list"), "{reason}");
}

/// Replaces `victim`'s public keys in the server's database by `attacker`'s,
/// as a compromised server could.
fn replace_keys_in_database(app: &TestApp, victim: &Person, attacker: &Identity) {
    use ferrogram_storage::rusqlite::{params, Connection};
    let conn = Connection::open(app.config.database_path()).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let keys = attacker.public_keys();
    let changed = conn
        .execute(
            "UPDATE users SET sign_key = ?1, enc_key = ?2 WHERE id = ?3",
            params![keys.sign.as_slice(), keys.enc.as_slice(), victim.id.0],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn a_replaced_public_key_is_reported_flagged_and_not_encrypted_to() {
    let app = spawn_app().await;
    let alice = person(&app, "rkalice", 0).await;
    let bob = person(&app, "rkbob", 1).await;
    let mallory = person(&app, "rkmallory", 3).await;
    let mut a = Device::new(&app, &alice).await;
    let b = Device::new(&app, &bob).await;
    let chat = a.messenger.create_direct(bob.id).await.unwrap();
    b.send(chat.id, "the real Bob").await;
    assert_eq!(
        a.message_from_others().await.verification,
        Verification::Trusted
    );
    let bob_fingerprint = bob.identity.fingerprint();
    let new_fingerprint = mallory.identity.fingerprint();

    replace_keys_in_database(&app, &bob, &mallory.identity);

    // Alice will not encrypt to the new key, and says why.
    let err = a
        .messenger
        .send(chat.id, MessagePayload::text("for Bob only"))
        .await
        .unwrap_err();
    match &err {
        MessengerError::KeyChanged {
            user_id,
            new_fingerprint: fp,
        } => assert_eq!((*user_id, fp), (bob.id, &new_fingerprint)),
        other => panic!("expected KeyChanged, got {other:?}"),
    }
    let (user, old, new) = a
        .wait_for("key change", |e| match e {
            ClientEvent::KeyChanged {
                user_id,
                old_fingerprint,
                new_fingerprint,
            } => Some((user_id, old_fingerprint, new_fingerprint)),
            _ => None,
        })
        .await;
    assert_eq!(
        (user, old, new),
        (bob.id, bob_fingerprint.clone(), new_fingerprint.clone())
    );

    // A message in Bob's name signed with the new key: decrypted, but flagged.
    let impostor = forged(
        chat.id,
        &bob,
        &mallory.identity,
        &[&alice, &bob],
        "it's me, Bob",
    );
    b.messenger.call::<SendMessage>(&impostor).await.unwrap();
    let got = a.message_from_others().await;
    assert_eq!(
        got.verification,
        Verification::KeyChanged {
            fingerprint: new_fingerprint.clone()
        }
    );
    assert!(!got.verification.is_trusted());
    // Bob's real key still verifies: his genuine messages stay trusted.
    b.send(chat.id, "still the real Bob").await;
    let genuine = a.message_from_others().await;
    assert_eq!(genuine.verification, Verification::Trusted);

    let keys = a.messenger.contact_keys(bob.id).await.unwrap();
    assert_eq!(keys.fingerprint, bob_fingerprint);
    assert_eq!(
        keys.pending_fingerprint.as_deref(),
        Some(new_fingerprint.as_str())
    );
    assert_ne!(keys.pending_safety_number, Some(keys.safety_number.clone()));
    assert!(matches!(
        a.messenger.mark_verified(bob.id).await,
        Err(MessengerError::KeyChanged { .. })
    ));

    // The user accepts the change: the flagged message becomes trusted and
    // messages go to the new key.
    a.messenger.accept_key_change(bob.id).await.unwrap();
    let stored = a
        .messenger
        .stored_messages(chat.id, None, 10)
        .await
        .unwrap();
    let impostor_stored = stored
        .iter()
        .find(|m| m.text() == Some("it's me, Bob"))
        .unwrap();
    assert_eq!(impostor_stored.verification, Verification::Trusted);
    a.send(chat.id, "to whoever holds the new key").await;
    assert!(matches!(
        a.messenger.accept_key_change(bob.id).await,
        Err(MessengerError::NoKeyChange(_))
    ));
}

#[tokio::test]
async fn a_replayed_envelope_is_flagged() {
    let app = spawn_app().await;
    let alice = person(&app, "rpalice", 0).await;
    let bob = person(&app, "rpbob", 1).await;
    let a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    let chat = a.messenger.create_direct(bob.id).await.unwrap();
    let original = a.send(chat.id, "pay Mallory 10 euros").await;
    assert_eq!(b.message_from_others().await.seq, original.seq);
    let store_dir = std::sync::Arc::clone(&b.store_dir);
    drop(b);

    // A compromised server stores Alice's envelope again, at a new seq (under
    // another id in its own column, so its uniqueness check does not object),
    // with a body that names the original id, as a JSON row (the form rows
    // had before envelopes were stored in binary, still read).
    {
        use ferrogram_storage::rusqlite::{params, Connection};
        let conn = Connection::open(app.config.database_path()).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let stored = ferrogram_storage::events::by_seq(&conn, chat.id, original.seq)
            .unwrap()
            .expect("the original is stored");
        let body = serde_json::to_string(&stored.body).unwrap();
        let replay_seq = original.seq.next();
        conn.execute(
            "INSERT INTO chat_events (chat_id, seq, sender, at, kind, client_msg_id, body)
             VALUES (?1, ?2, ?3, ?4, 'message', 'replayed', ?5)",
            params![chat.id.0, replay_seq, alice.id.0, Timestamp::now(), body],
        )
        .unwrap();
        conn.execute(
            "UPDATE chats SET last_seq = ?2 WHERE id = ?1",
            params![chat.id.0, replay_seq],
        )
        .unwrap();
    }

    // Bob catches up: the copy is flagged, not a second payment order.
    let mut b = Device::with_store(&app, &bob, store_dir).await;
    let (payload, reason) = flagged_message(&mut b).await;
    assert_eq!(payload, None);
    assert!(reason.contains("replay"), "{reason}");
}

#[tokio::test]
async fn a_kept_wrap_key_opens_the_sealed_keys_of_a_resumed_session() {
    let app = spawn_app().await;
    let ada = person(&app, "wrapkey", 0).await;
    let session = app.login(&ada.user).await;
    let locked = session
        .locked_keys()
        .await
        .expect("sealing")
        .expect("a log-in has keys");
    let key = session.wrap_key().expect("a log-in has the wrap key");

    // What the GNOME app does at start: the token and the wrap key from the
    // keyring, the sealed keys from disk, no password.
    let resumed = app.client.resume(session.token()).await.expect("resume");
    assert!(!resumed.has_keys());
    resumed
        .unlock_with_key(&key, &locked)
        .await
        .expect("the kept key opens the keys");
    assert!(resumed.has_keys());
    assert_eq!(
        resumed.identity().expect("keys").fingerprint(),
        ada.identity.fingerprint()
    );

    // Another key does not open them, and leaves the session locked.
    let other = app.client.resume(session.token()).await.expect("resume");
    let wrong = ferrogram_client::WrapKey::from_bytes([9; 32]);
    assert!(other.unlock_with_key(&wrong, &locked).await.is_err());
    assert!(!other.has_keys());
}

/// A `wrap_proof` is the server's to add when it cuts an envelope down for
/// one member; an envelope sent with one is refused, and nothing is stored.
#[tokio::test]
async fn a_sender_cannot_send_a_cut_down_envelope() {
    let app = spawn_app().await;
    let alice = person(&app, "wpalice", 0).await;
    let bob = person(&app, "wpbob", 1).await;
    let a = Device::new(&app, &alice).await;
    let chat = a.messenger.create_direct(bob.id).await.unwrap();
    let mut request = forged(chat.id, &alice, &alice.identity, &[&alice, &bob], "cut");
    let views = MemberViews::new(&request.envelope).unwrap();
    request.envelope = views.view(bob.id).unwrap();
    let err = a.messenger.call::<SendMessage>(&request).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidEnvelope), "{err}");

    // The whole envelope with a proof added is refused as well.
    let mut request = forged(chat.id, &alice, &alice.identity, &[&alice, &bob], "cut");
    let proof = MemberViews::new(&request.envelope)
        .unwrap()
        .wrap_of(bob.id)
        .unwrap()
        .1;
    request.envelope.wrap_proof = Some(proof);
    let err = a.messenger.call::<SendMessage>(&request).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidEnvelope), "{err}");
    assert!(a.messenger.list_chats().await.unwrap()[0]
        .last_message
        .is_none());
}
