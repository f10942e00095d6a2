//! Logged-in devices (the client library's `Messenger` with its own store)
//! and waiting for their events.

use std::sync::Arc;
use std::time::Duration;

use ferrogram_client::proto::MessagePayload;
use ferrogram_client::{
    ChatId, ClientEvent, EventStream, Message, Messenger, MessengerOptions, Seq, Store,
};
use tempfile::TempDir;

use crate::app::TestApp;
use crate::people::Person;

/// How long a test waits for one expected event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

/// Options for tests: quick reconnects.
pub fn test_options() -> MessengerOptions {
    MessengerOptions {
        request_timeout: Duration::from_secs(15),
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        ..MessengerOptions::default()
    }
}

/// One logged-in device: a messenger, its events and its store folder.
pub struct Device {
    pub messenger: Messenger,
    pub events: EventStream,
    pub store_dir: Arc<TempDir>,
}

impl Device {
    /// Logs `person` in on a new device with a new store and connects.
    pub async fn new(app: &TestApp, person: &Person) -> Device {
        Device::with_store(app, person, Arc::new(tempfile::tempdir().unwrap())).await
    }

    /// Logs in again and connects with the store in `store_dir` (a device
    /// that was offline and comes back).
    pub async fn with_store(app: &TestApp, person: &Person, store_dir: Arc<TempDir>) -> Device {
        let session = Arc::new(app.login(&person.user).await);
        let store = Store::open(store_dir.path().join("store.sqlite3"), person.id).unwrap();
        let (messenger, events) = Messenger::connect(session, Some(store), test_options())
            .await
            .expect("messenger connects");
        messenger
            .wait_synced(EVENT_TIMEOUT)
            .await
            .expect("messenger syncs");
        Device {
            messenger,
            events,
            store_dir,
        }
    }

    /// Waits for the first event `pick` accepts, skipping others.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(ClientEvent) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.next())
                .await
                .unwrap_or_else(|_| panic!("no {what} within {EVENT_TIMEOUT:?}"))
                .unwrap_or_else(|| panic!("the event stream ended while waiting for {what}"));
            if let Some(found) = pick(event) {
                return found;
            }
        }
    }

    /// The next received message (any chat, any sender).
    pub async fn message(&mut self) -> Message {
        self.wait_for("message", |e| match e {
            ClientEvent::MessageReceived(m) => Some(m),
            _ => None,
        })
        .await
    }

    /// The next message from someone else.
    pub async fn message_from_others(&mut self) -> Message {
        let me = self.messenger.user_id();
        self.wait_for("message from another user", |e| match e {
            ClientEvent::MessageReceived(m) if m.sender != me => Some(m),
            _ => None,
        })
        .await
    }

    /// Every message received up to and including `chat`'s message at `seq`.
    /// Events of a chat come in seq order, so with a marker sent last this is
    /// everything that came before it, each as many times as it came.
    pub async fn messages_through(&mut self, chat: ChatId, seq: Seq) -> Vec<Message> {
        let mut found = Vec::new();
        loop {
            let message = self.message().await;
            let last = message.chat_id == chat && message.seq == seq;
            found.push(message);
            if last {
                return found;
            }
        }
    }

    /// Every message received within `quiet` (until nothing comes for that
    /// long). Only where no barrier exists (a chat one has left).
    pub async fn drain_messages(&mut self, quiet: Duration) -> Vec<Message> {
        let mut found = Vec::new();
        while let Ok(Some(event)) = tokio::time::timeout(quiet, self.events.next()).await {
            if let ClientEvent::MessageReceived(m) = event {
                found.push(m);
            }
        }
        found
    }

    /// Lets anyone add this account to a group directly (the default
    /// setting makes a stranger's add an invitation).
    pub async fn open_to_groups(&self) {
        self.messenger
            .set_who_can_add_me(ferrogram_client::proto::GroupAddPolicy::Everyone)
            .await
            .expect("privacy setting");
    }

    pub async fn send(&self, chat: ChatId, text: &str) -> ferrogram_client::proto::MessageAck {
        self.messenger
            .send(chat, MessagePayload::text(text))
            .await
            .unwrap_or_else(|e| panic!("send {text:?}: {e}"))
    }
}

/// A text no other test sends.
pub fn marker(tag: &str) -> String {
    format!("{tag}-{:032x}", rand::random::<u128>())
}
