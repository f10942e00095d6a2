//! Accounts with core's fixed test identities, registered and verified
//! through the client library (the code read from the outbox).

use std::sync::{Arc, OnceLock};

use ferrogram_client::proto::RegisterResponse;
use ferrogram_client::{Identity, UserId};
use ferrogram_core::b64::B64;
use ferrogram_core::proto::{GroupAddPolicy, UpdateProfileRequest};

use crate::app::{TestApp, TestUser};

/// TEST KEYS ONLY: core's fixed test identities (generating RSA-3072 keys
/// takes seconds per account).
pub fn identity(n: usize) -> Arc<Identity> {
    const TEXTS: [&str; 4] = [
        include_str!("../../../core/src/crypto/testdata/identity-0.b64"),
        include_str!("../../../core/src/crypto/testdata/identity-1.b64"),
        include_str!("../../../core/src/crypto/testdata/identity-2.b64"),
        include_str!("../../../core/src/crypto/testdata/identity-3.b64"),
    ];
    static ALL: OnceLock<Vec<Arc<Identity>>> = OnceLock::new();
    ALL.get_or_init(|| {
        TEXTS
            .iter()
            .map(|t| Arc::new(Identity::from_bytes(&B64::decode(t.trim()).unwrap()).unwrap()))
            .collect()
    })[n % TEXTS.len()]
    .clone()
}

/// A verified account with a fixed identity.
pub struct Person {
    pub user: TestUser,
    pub id: UserId,
    pub identity: Arc<Identity>,
}

/// Registers and verifies `tag` with fixed identity `n` (0 to 3; people in
/// one test need different ones).
pub async fn person(app: &TestApp, tag: &str, n: usize) -> Person {
    let (person, _) = register(app, tag, n).await;
    let user = &person.user;
    let code = app.mail_to(&user.email).await.code().expect("code in mail");
    app.client
        .verify_code(&user.email, &code)
        .await
        .expect("verify");
    person
}

/// Registers `tag` with fixed identity `n`; the server's answer too.
async fn register(app: &TestApp, tag: &str, n: usize) -> (Person, RegisterResponse) {
    let user = TestUser::new(tag);
    let identity = identity(n);
    let registered = app
        .client
        .register(user.params(identity.clone()))
        .await
        .expect("register");
    let person = Person {
        id: registered.user_id,
        user,
        identity,
    };
    (person, registered)
}

/// An account made in bench mode: verified at once, no mail to wait for;
/// anyone may add it to groups directly.
pub async fn bench_person(app: &TestApp, tag: &str, n: usize) -> Person {
    let (person, registered) = register(app, tag, n).await;
    assert!(registered.verified, "bench mode verifies at once");
    // Anyone may add these accounts to groups directly.
    open_to_groups(app, &person.user).await;
    person
}

/// Lets anyone add `user` to a group directly (by default a stranger's add
/// is an invitation).
pub async fn open_to_groups(app: &TestApp, user: &TestUser) {
    app.login(user)
        .await
        .update_profile(UpdateProfileRequest {
            who_can_add_me: Some(GroupAddPolicy::Everyone),
            ..Default::default()
        })
        .await
        .expect("privacy setting");
}
