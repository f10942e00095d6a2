//! The account life cycle: register, verify (code and link), log in, profile,
//! search, keys, sessions, password change, deletion.

use ferrogram_client::proto::UpdateProfileRequest;
use ferrogram_client::{ClientError, ErrorCode, Method};
use ferrogram_core::b64::B64;
use ferrogram_core::crypto;
use serde_json::json;

use ferrogram_test_support::{
    identity_a, identity_b, mail, spawn_app, spawn_app_with, TestUser, TEST_KDF,
};

fn code_of(result: Result<impl Sized, ClientError>) -> ErrorCode {
    match result {
        Ok(_) => panic!("expected an error, got success"),
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("error without code: {e}")),
    }
}

#[tokio::test]
async fn full_account_life_cycle() {
    let app = spawn_app().await;
    let alice = TestUser::new("alice");
    let bob = TestUser::new("bob");

    // Register: the server answers unverified and mails a code and a link.
    let registered = app.register(&alice).await;
    assert_eq!(registered.handle, alice.handle);
    assert!(!registered.verified);
    let mail = app.mail_to(&alice.email).await;
    let code = mail.code().expect("a 6-digit code in the mail");
    let token = mail.link_token().expect("a link token in the mail");
    assert!(
        mail.link().unwrap().starts_with(app.base_url()),
        "{:?}",
        mail.link()
    );
    assert!(!mail.header("subject").unwrap_or("").contains(&code));

    // Unverified accounts can log in, and say so.
    let early = app.login(&alice).await;
    assert!(!early.me().await.unwrap().verified);

    // Verify by code; the code and the link of that mail are then used up.
    let verified = app.client.verify_code(&alice.email, &code).await.unwrap();
    assert!(verified.verified);
    assert_eq!(verified.user_id, registered.user_id);
    assert_eq!(
        code_of(app.client.verify_code(&alice.email, &code).await),
        ErrorCode::InvalidCode
    );
    assert_eq!(
        code_of(app.client.verify_link_token(&token).await),
        ErrorCode::InvalidCode
    );
    assert!(early.me().await.unwrap().verified);

    // Bob verifies through the link, which answers an HTML page.
    let bob_registered = app.client.register(bob.params(identity_b())).await.unwrap();
    let bob_mail = app.mail_to(&bob.email).await;
    let bob_link_token = bob_mail.link_token().unwrap();
    let (status, page) = app
        .client
        .raw_bytes(
            Method::GET,
            &format!("/verify?token={bob_link_token}"),
            None,
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<html") && page.contains("verified"),
        "{page}"
    );
    let bob_session = app.login(&bob).await;
    assert!(bob_session.me().await.unwrap().verified);

    // Log in: the session carries the account and the opened private keys.
    let session = app.login(&alice).await;
    let me = session.me().await.unwrap();
    assert_eq!(me.id, registered.user_id);
    assert_eq!(me.email, alice.email);
    assert_eq!(me.handle, alice.handle);
    assert_eq!(me.display_name, alice.display_name);
    assert_eq!(me.public_keys, identity_a().public_keys());
    assert_eq!(me.fingerprint, crypto::fingerprint(&me.public_keys));
    assert_eq!(
        session.identity().unwrap().public_keys(),
        identity_a().public_keys()
    );

    // Profile update, including the handle.
    let new_handle = format!("{}_x", alice.handle);
    let updated = session
        .update_profile(UpdateProfileRequest {
            display_name: Some("Alice Liddell".into()),
            bio: Some("Curiouser and curiouser.\nSecond line.".into()),
            handle: Some(new_handle.to_uppercase()),
            who_can_add_me: None,
        })
        .await
        .unwrap();
    assert_eq!(updated.display_name, "Alice Liddell");
    assert_eq!(updated.bio, "Curiouser and curiouser.\nSecond line.");
    assert_eq!(updated.handle, new_handle);
    assert_eq!(session.me().await.unwrap(), updated);
    let seen_by_bob = bob_session.get_user(&new_handle).await.unwrap();
    assert_eq!(seen_by_bob.id, me.id);
    assert_eq!(seen_by_bob.display_name, "Alice Liddell");
    assert_eq!(
        code_of(bob_session.get_user(&alice.handle).await),
        ErrorCode::UserNotFound
    );
    // A handle in use is refused.
    assert_eq!(
        code_of(
            bob_session
                .update_profile(UpdateProfileRequest {
                    handle: Some(new_handle.clone()),
                    ..UpdateProfileRequest::default()
                })
                .await
        ),
        ErrorCode::HandleTaken
    );

    // Search by handle prefix and by display-name prefix.
    let by_handle = bob_session
        .search_users(&new_handle[..8], None)
        .await
        .unwrap();
    assert!(by_handle.iter().any(|u| u.id == me.id), "{by_handle:?}");
    let by_name = bob_session.search_users("Alice Lid", None).await.unwrap();
    assert!(by_name.iter().any(|u| u.id == me.id), "{by_name:?}");
    let none = bob_session
        .search_users("zzz_nobody_has_this", None)
        .await
        .unwrap();
    assert!(none.is_empty());

    // Keys of another user, fingerprint checked by the client.
    let keys = bob_session.user_keys(me.id).await.unwrap();
    assert_eq!(keys.public_keys, identity_a().public_keys());
    assert_eq!(keys.fingerprint, identity_a().fingerprint());
    let bob_keys = session.user_keys(bob_registered.user_id).await.unwrap();
    assert_eq!(bob_keys.public_keys, identity_b().public_keys());
    assert_ne!(bob_keys.fingerprint, keys.fingerprint);

    // Sessions: list, revoke one, log out, revoke the others.
    let second = app.login(&alice).await;
    let third = app.login(&alice).await;
    let listed = session.sessions().await.unwrap();
    assert_eq!(listed.len(), 4, "early, session, second, third");
    let current: Vec<_> = listed.iter().filter(|s| s.current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(&current[0].id, session.id());
    assert!(listed.iter().all(|s| s.device_name == "test device"));
    session.revoke_session(second.id()).await.unwrap();
    assert!(second.me().await.unwrap_err().is_unauthorized());
    third.logout().await.unwrap();
    assert!(third.me().await.unwrap_err().is_unauthorized());
    assert_eq!(session.revoke_other_sessions().await.unwrap(), 1, "early");
    assert!(early.me().await.unwrap_err().is_unauthorized());
    let listed = session.sessions().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(&listed[0].id, session.id());

    // Password change: same keys re-sealed, other sessions revoked, only the
    // new password works.
    let other = app.login(&alice).await;
    let new_password = "a completely different passphrase";
    let revoked = session
        .change_password(&alice.password, new_password)
        .await
        .unwrap();
    assert_eq!(revoked, 1);
    assert!(other.me().await.unwrap_err().is_unauthorized());
    assert_eq!(session.me().await.unwrap().id, me.id);
    assert!(app
        .client
        .login(&alice.email, &alice.password, None)
        .await
        .err()
        .unwrap()
        .is_invalid_credentials());
    let relogged = app
        .client
        .login(&alice.email, new_password, None)
        .await
        .unwrap();
    assert_eq!(
        relogged.identity().unwrap().public_keys(),
        identity_a().public_keys()
    );

    // Deletion: confirmed with the password; afterwards nothing works and the
    // handle is free again.
    assert_eq!(
        code_of(relogged.delete_account("wrong password!").await),
        ErrorCode::InvalidCredentials
    );
    relogged.delete_account(new_password).await.unwrap();
    assert!(session.me().await.unwrap_err().is_unauthorized());
    assert!(app
        .client
        .login(&alice.email, new_password, None)
        .await
        .err()
        .unwrap()
        .is_invalid_credentials());
    assert_eq!(
        code_of(bob_session.get_user(&new_handle).await),
        ErrorCode::UserNotFound
    );
    assert_eq!(
        code_of(bob_session.user_keys(me.id).await),
        ErrorCode::UserNotFound
    );
    let successor = TestUser {
        handle: new_handle.clone(),
        email: alice.email.clone(),
        ..TestUser::new("succ")
    };
    let again = app.register(&successor).await;
    assert_eq!(again.handle, new_handle);
    assert_ne!(again.user_id, me.id);
}

#[tokio::test]
async fn a_link_opens_once_and_a_bad_link_says_so() {
    let app = spawn_app().await;
    let user = TestUser::new("link");
    app.register(&user).await;
    let token = app.mail_to(&user.email).await.link_token().unwrap();
    let open = |path: String| {
        let client = app.client.clone();
        async move {
            client
                .raw_bytes(Method::GET, &path, None, None, None)
                .await
                .unwrap()
        }
    };
    let (status, page) = open(format!("/verify?token={token}")).await;
    assert_eq!(status, 200, "{page}");
    let (status, page) = open(format!("/verify?token={token}")).await;
    assert_eq!(status, 422, "a used link: {page}");
    assert!(page.contains("<html"), "{page}");
    assert!(!page.contains(&token), "the page must not echo the token");
    let (status, _) = open("/verify?token=notatoken".to_owned()).await;
    assert_eq!(status, 422);
    let (status, page) = open("/verify".to_owned()).await;
    assert_eq!(status, 400, "{page}");
}

#[tokio::test]
async fn wrong_codes_fail_and_exhaust_the_code() {
    let app = spawn_app_with(|c| c.security.max_code_attempts = 3).await;
    let user = TestUser::new("codes");
    app.register(&user).await;
    let code = app.mail_to(&user.email).await.code().unwrap();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(
        code_of(app.client.verify_code(&user.email, wrong).await),
        ErrorCode::InvalidCode
    );
    // Unknown email: the same answer as a wrong code.
    assert_eq!(
        code_of(app.client.verify_code("nobody@example.org", &code).await),
        ErrorCode::InvalidCode
    );
    assert_eq!(
        code_of(app.client.verify_code(&user.email, wrong).await),
        ErrorCode::InvalidCode
    );
    assert_eq!(
        code_of(app.client.verify_code(&user.email, wrong).await),
        ErrorCode::InvalidCode,
        "the third wrong code voids the code, and says nothing"
    );
    assert_eq!(
        code_of(app.client.verify_code(&user.email, &code).await),
        ErrorCode::CodeExpired,
        "even the right code is refused now"
    );
    // The link still works (it is not guessable), and verifies.
    let token = app.mail_to(&user.email).await.link_token().unwrap();
    assert!(app.client.verify_link_token(&token).await.unwrap().verified);
}

#[tokio::test]
async fn resend_mails_a_new_code_that_replaces_the_old_one() {
    let app = spawn_app_with(|c| c.security.resend_cooldown_secs = 0).await;
    let user = TestUser::new("resend");
    app.register(&user).await;
    let first = app.mail_to(&user.email).await.code().unwrap();
    let answer = app.client.resend_verification(&user.email).await.unwrap();
    assert_eq!(answer.cooldown_secs, 0);
    app.wait_for_mails(&user.email, 2).await;
    let second = app.mail_to(&user.email).await.code().unwrap();
    if first != second {
        assert_eq!(
            code_of(app.client.verify_code(&user.email, &first).await),
            ErrorCode::InvalidCode,
            "the first code was replaced"
        );
    }
    app.client.verify_code(&user.email, &second).await.unwrap();
    // A verified account gets no more mail, but the answer looks the same.
    app.client.resend_verification(&user.email).await.unwrap();
    app.client
        .resend_verification("nobody@example.org")
        .await
        .unwrap();
    // Stopping the server waits until every queued mail is written.
    let outbox = app.outbox();
    app.server.stop();
    assert_eq!(mail::count_to(&outbox, &user.email), 2);
    assert_eq!(mail::count_to(&outbox, "nobody@example.org"), 0);
}

#[tokio::test]
async fn resend_has_a_cooldown() {
    let app = spawn_app_with(|c| c.security.resend_cooldown_secs = 600).await;
    let user = TestUser::new("cool");
    app.register(&user).await;
    app.mail_to(&user.email).await;
    let answer = app.client.resend_verification(&user.email).await.unwrap();
    assert!(
        answer.cooldown_secs > 500 && answer.cooldown_secs <= 600,
        "{answer:?}"
    );
    // Stopping the server waits until every queued mail is written.
    let outbox = app.outbox();
    app.server.stop();
    assert_eq!(mail::count_to(&outbox, &user.email), 1);
}

#[tokio::test]
async fn duplicate_email_and_handle_are_refused() {
    let app = spawn_app().await;
    let first = TestUser::new("dup");
    app.register(&first).await;
    let same_email = TestUser {
        email: first.email.to_uppercase(),
        ..TestUser::new("dupa")
    };
    assert_eq!(
        code_of(app.client.register(same_email.params(identity_a())).await),
        ErrorCode::EmailTaken
    );
    let same_handle = TestUser {
        handle: first.handle.clone(),
        ..TestUser::new("dupb")
    };
    assert_eq!(
        code_of(app.client.register(same_handle.params(identity_a())).await),
        ErrorCode::HandleTaken
    );
}

#[tokio::test]
async fn registration_can_be_closed() {
    let app = spawn_app_with(|c| c.security.registration_open = false).await;
    assert!(!app.client.server_info().registration_open);
    let user = TestUser::new("closed");
    assert_eq!(
        code_of(app.client.register(user.params(identity_a())).await),
        ErrorCode::RegistrationClosed
    );
}

#[tokio::test]
async fn server_info_identifies_ferrogram() {
    let app = spawn_app().await;
    let info = app.client.fetch_server_info().await.unwrap();
    assert_eq!(info.name, "ferrogram");
    assert_eq!(info.protocol_version, ferrogram_core::PROTOCOL_VERSION);
    assert_eq!(info.min_kdf, TEST_KDF);
    assert!(info.registration_open);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_fail_alike() {
    let app = spawn_app().await;
    let user = TestUser::new("wrongpw");
    app.register_verified(&user).await;
    let wrong = app
        .client
        .login(&user.email, "not the password", None)
        .await
        .err()
        .unwrap();
    assert!(wrong.is_invalid_credentials(), "{wrong}");
    let unknown = app
        .client
        .login("nobody.here@example.org", "whatever password", None)
        .await
        .err()
        .unwrap();
    assert!(unknown.is_invalid_credentials(), "{unknown}");
    match (&wrong, &unknown) {
        (ClientError::Api(a), ClientError::Api(b)) => assert_eq!(a.message, b.message),
        _ => panic!("both must be API errors"),
    }
}

#[tokio::test]
async fn server_checks_the_old_password_on_change_and_keeps_it_on_failure() {
    let app = spawn_app().await;
    let user = TestUser::new("chpw");
    app.register_verified(&user).await;
    let session = app.login(&user).await;
    // The client notices a wrong old password before asking the server.
    let local = session
        .change_password("wrong old password", "new password 123")
        .await
        .unwrap_err();
    assert!(matches!(local, ClientError::InvalidInput(_)), "{local:?}");
    assert_eq!(local.code(), Some(ErrorCode::InvalidCredentials));
    // The server checks it too.
    let body = json!({
        "old_auth_key": B64(vec![7; 32]),
        "new_auth_key": B64(vec![8; 32]),
        "new_kdf_salt": B64(vec![9; 16]),
        "new_kdf": TEST_KDF,
        "sealed_keys": B64(vec![1; 64]),
    });
    let (status, answer) = app
        .client
        .raw(
            Method::PUT,
            "/api/v1/me/password",
            Some(body),
            Some(session.token()),
        )
        .await
        .unwrap();
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_credentials");
    // Nothing changed: the old password still logs in and opens the keys.
    let again = app.login(&user).await;
    assert_eq!(
        again.identity().unwrap().public_keys(),
        identity_a().public_keys()
    );
}

#[tokio::test]
async fn revoking_an_unknown_session_is_not_found() {
    let app = spawn_app().await;
    let user = TestUser::new("revoke");
    app.register(&user).await;
    let session = app.login(&user).await;
    let missing = ferrogram_core::ids::SessionId("0".repeat(32));
    assert_eq!(
        code_of(session.revoke_session(&missing).await),
        ErrorCode::SessionNotFound
    );
    // Another account's session cannot be revoked either.
    let other = TestUser::new("revokeb");
    app.register(&other).await;
    let other_session = app.login(&other).await;
    assert_eq!(
        code_of(session.revoke_session(other_session.id()).await),
        ErrorCode::SessionNotFound
    );
    assert!(other_session.me().await.is_ok());
}

#[tokio::test]
async fn a_resumed_token_works_without_keys() {
    let app = spawn_app().await;
    let user = TestUser::new("resume");
    app.register(&user).await;
    let session = app.login(&user).await;
    let resumed = app.client.resume(session.token()).await.unwrap();
    assert_eq!(resumed.id(), session.id());
    assert!(!resumed.has_keys());
    assert_eq!(resumed.cached_me().email, user.email);
    let err = resumed
        .change_password(&user.password, "another long password")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidInput(_)), "{err:?}");
    // Deleting works with the password alone (pre-login gives the salt).
    resumed.delete_account(&user.password).await.unwrap();
    assert!(session.me().await.unwrap_err().is_unauthorized());
    let gone = app.client.resume(session.token()).await.err().unwrap();
    assert!(gone.is_unauthorized(), "{gone}");
}
