//! The per-account storage quota (`limits.account_storage_bytes`): sends
//! succeed until the account's stored messages reach it, then fail with
//! `quota_exceeded`; other accounts are not affected.

use ferrogram_client::proto::MessagePayload;
use ferrogram_core::ErrorCode;

use ferrogram_test_support::{person, spawn_app_with, Device};

#[tokio::test]
async fn sends_past_the_account_storage_quota_fail_with_quota_exceeded() {
    // A direct message's envelope (two RSA-3072 wraps, a signature) takes
    // about 1.5 KB: a few fit.
    let app = spawn_app_with(|c| c.limits.account_storage_bytes = 8_000).await;
    let alice = person(&app, "quotaalice", 0).await;
    let bob = person(&app, "quotabob", 1).await;
    let a = Device::new(&app, &alice).await;
    let b = Device::new(&app, &bob).await;
    let chat = a.messenger.create_direct(bob.id).await.unwrap();

    let mut sent = 0;
    let refused = loop {
        match a
            .messenger
            .send(chat.id, MessagePayload::text(format!("message {sent}")))
            .await
        {
            Ok(_) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 100, "the quota is never reached");
    };
    assert!(sent >= 2, "only {sent} messages fit");
    assert_eq!(refused.code(), Some(ErrorCode::QuotaExceeded), "{refused}");
    assert!(refused.to_string().contains("8000 bytes"), "{refused}");
    // Still refused (nothing was stored of the refused one), and Bob, with
    // his own quota, still sends.
    let again = a
        .messenger
        .send(chat.id, MessagePayload::text("one more"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::QuotaExceeded));
    b.send(chat.id, "Bob is not affected").await;
    let history = b.messenger.history(chat.id, None, None, 200).await.unwrap();
    assert_eq!(history.messages().len(), sent + 1);
}
