//! Helpers for the chat and message tests: verified people with fixed test
//! identities, real envelopes sealed for chat members, and readers of the
//! recording notifier.

use super::support::TestApp;
use crate::notify::Notification;
use ferrogram_core::b64::B64;
use ferrogram_core::crypto::envelope::seal_payload;
use ferrogram_core::crypto::Identity;
use ferrogram_core::ids::{ChatId, Timestamp, UserId};
use ferrogram_core::proto::{
    Chat, ChatEvent, ChatList, ChatSummary, Envelope, EnvelopeHeader, LiveEvent, MessageAck,
    MessagePayload,
};
use serde_json::{json, Value};
use std::sync::OnceLock;

/// TEST KEYS ONLY: the fixed identities of core's crypto tests.
const IDENTITIES: [&str; 4] = [
    include_str!("../../../core/src/crypto/testdata/identity-0.b64"),
    include_str!("../../../core/src/crypto/testdata/identity-1.b64"),
    include_str!("../../../core/src/crypto/testdata/identity-2.b64"),
    include_str!("../../../core/src/crypto/testdata/identity-3.b64"),
];

fn identity(n: usize) -> &'static Identity {
    static ALL: OnceLock<Vec<Identity>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        IDENTITIES
            .iter()
            .map(|text| Identity::from_bytes(&B64::decode(text.trim()).unwrap()).unwrap())
            .collect()
    });
    &all[n % all.len()]
}

/// A verified, logged-in account and the identity its envelopes are sealed with.
#[derive(Clone)]
pub struct Person {
    pub id: UserId,
    pub token: String,
    pub identity: &'static Identity,
}

impl Person {
    /// As `TestApp::call` takes it.
    #[allow(clippy::unnecessary_wraps)]
    pub fn token(&self) -> Option<&str> {
        Some(&self.token)
    }
}

/// `n` verified people, `handle0@x.org` ... (the handles given).
pub async fn people(app: &TestApp, handles: &[&str]) -> Vec<Person> {
    let mut found = Vec::new();
    for (n, handle) in handles.iter().enumerate() {
        let (id, token) = app.signup(&format!("{handle}@x.org"), handle).await;
        // Lets the tests' people add each other to groups directly, as
        // before invitations; `open_to_groups(.., false)` undoes it.
        open_to_groups(app, id, true).await;
        found.push(Person {
            id,
            token,
            identity: identity(n),
        });
    }
    found
}

/// Sets `user`'s "who can add me to groups" to everyone (or back to the
/// default, people they chat with), straight in the database.
pub async fn open_to_groups(app: &TestApp, user: UserId, open: bool) {
    let update = ferrogram_storage::users::ProfileUpdate {
        who_can_add_me: Some(if open {
            ferrogram_core::proto::GroupAddPolicy::Everyone
        } else {
            ferrogram_core::proto::GroupAddPolicy::ChatPartners
        }),
        ..Default::default()
    };
    app.ctx
        .storage
        .run(move |conn| {
            ferrogram_storage::users::update_profile(conn, user, &update, Timestamp::from_millis(1))
        })
        .await
        .unwrap();
}

/// An envelope from `sender` in `chat` for exactly `recipients`.
pub fn seal(
    chat_id: ChatId,
    sender: &Person,
    id: &str,
    text: &str,
    recipients: &[&Person],
) -> Envelope {
    let header = EnvelopeHeader {
        chat_id,
        sender: sender.id,
        client_msg_id: id.to_owned(),
        sent_at: Timestamp::now(),
    };
    let recipients: Vec<_> = recipients
        .iter()
        .map(|p| (p.id, p.identity.public_keys()))
        .collect();
    seal_payload(
        &MessagePayload::text(text),
        header,
        sender.identity,
        &recipients,
        &mut rand::rng(),
    )
    .unwrap()
}

pub fn send_body(chat_id: ChatId, sender: &Person, id: &str, recipients: &[&Person]) -> Value {
    json!({
        "chat_id": chat_id,
        "client_msg_id": id,
        "envelope": seal(chat_id, sender, id, "hello", recipients),
    })
}

pub async fn send(
    app: &TestApp,
    chat_id: ChatId,
    sender: &Person,
    id: &str,
    recipients: &[&Person],
) -> MessageAck {
    let body = send_body(chat_id, sender, id, recipients);
    serde_json::from_value(app.ok("message.send", sender.token(), body).await).unwrap()
}

pub async fn create_group(app: &TestApp, owner: &Person, members: &[&Person]) -> Chat {
    let ids: Vec<UserId> = members.iter().map(|p| p.id).collect();
    let body = json!({"title": "Team", "member_ids": ids});
    serde_json::from_value(app.ok("chat.create_group", owner.token(), body).await).unwrap()
}

pub async fn chat_list(app: &TestApp, person: &Person) -> Vec<ChatSummary> {
    let list: ChatList =
        serde_json::from_value(app.ok("chat.list", person.token(), json!({})).await).unwrap();
    list.chats
}

pub async fn history(app: &TestApp, person: &Person, body: Value) -> (Vec<i64>, bool) {
    let page = app.ok("message.history", person.token(), body).await;
    let events: Vec<ChatEvent> = serde_json::from_value(page["events"].clone()).unwrap();
    (
        events.iter().map(|e| e.seq.get()).collect(),
        page["more"].as_bool().unwrap(),
    )
}

pub fn ids(people: &[&Person]) -> Vec<UserId> {
    let mut ids: Vec<UserId> = people.iter().map(|p| p.id).collect();
    ids.sort_unstable();
    ids
}

/// The chat events announced since the last `take`, with their recipients.
pub fn chat_events(app: &TestApp) -> Vec<(Vec<UserId>, ChatEvent)> {
    app.notifier
        .take()
        .into_iter()
        .filter_map(|call| match call {
            Notification::ChatEvent { members, event } => Some((members, event)),
            _ => None,
        })
        .collect()
}

/// The live events announced since the last `take`, with their recipients.
pub fn live_events(app: &TestApp) -> Vec<(Vec<UserId>, LiveEvent)> {
    app.notifier
        .take()
        .into_iter()
        .filter_map(|call| match call {
            Notification::Live { users, event } => Some((users, event)),
            _ => None,
        })
        .collect()
}
