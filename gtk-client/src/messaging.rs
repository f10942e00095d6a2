//! The signed-in session's live side: keeps the chat list and the users in
//! step with the server, and carries out what the views ask (send, edit,
//! delete, load history, mark read, typing, contact keys).
//!
//! Network calls run on tokio through [`runtime`]; their results are applied
//! to the models here, on the GLib main loop. Long-running tasks are aborted
//! in [`Messaging::stop`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use ferrogram_client::proto::UserProfile;
use ferrogram_client::{ClientError, Session};
use gtk::glib;

use crate::application::FerrogramApplication;
use crate::i18n::tr;
use crate::models::{Account, Chat, ChatList, ConnectionState, Message, User};
use crate::runtime;

/// A contact's keys as shown in the security dialog.
#[derive(Debug, Clone)]
pub struct ContactKeys {
    pub fingerprint: String,
    pub safety_number: String,
}

#[derive(Clone)]
pub struct Messaging {
    inner: Rc<Inner>,
}

struct Inner {
    session: Arc<Session>,
    chats: ChatList,
    account: Account,
    users: RefCell<HashMap<i64, User>>,
    /// Tokio tasks (event stream, reconnects) to abort on stop.
    tasks: RefCell<Vec<tokio::task::AbortHandle>>,
    /// Main-loop tasks applying their results.
    local_tasks: RefCell<Vec<glib::JoinHandle<()>>>,
}

// Until the client library has its messaging API, several of these are
// placeholders with the final signatures the views already call.
#[allow(clippy::unused_async, clippy::unused_self)]
impl Messaging {
    pub fn start(app: &FerrogramApplication, session: Arc<Session>, account: &Account) -> Self {
        let me = account.user();
        let inner = Inner {
            session,
            chats: app.chats(),
            account: account.clone(),
            users: RefCell::new(HashMap::from([(me.user_id(), me)])),
            tasks: RefCell::default(),
            local_tasks: RefCell::default(),
        };
        let messaging = Self {
            inner: Rc::new(inner),
        };
        messaging.connect();
        messaging
    }

    /// Aborts every task of this session (log out, window closed).
    pub fn stop(&self) {
        for task in self.inner.tasks.take() {
            task.abort();
        }
        for task in self.inner.local_tasks.take() {
            task.abort();
        }
        self.inner.account.set_connection(ConnectionState::Offline);
    }

    pub fn session(&self) -> Arc<Session> {
        self.inner.session.clone()
    }

    pub fn account(&self) -> Account {
        self.inner.account.clone()
    }

    pub fn me(&self) -> User {
        self.inner.account.user()
    }

    pub fn chats(&self) -> ChatList {
        self.inner.chats.clone()
    }

    /// The one `User` object for a profile (so names and presence update everywhere).
    pub fn user(&self, profile: &UserProfile) -> User {
        let mut users = self.inner.users.borrow_mut();
        let user = users
            .entry(profile.id.0)
            .or_insert_with(|| User::new(profile.id.0, &profile.handle, &profile.display_name))
            .clone();
        user.set_handle(profile.handle.clone());
        user.set_display_name(profile.display_name.clone());
        user
    }

    /// Opens the live connection. The client library's WebSocket event stream
    /// is not available yet: the chat list stays as loaded.
    fn connect(&self) {
        self.inner.account.set_connection(ConnectionState::Offline);
    }

    /// Users whose handle or name starts with `query` (not me).
    pub async fn search_users(&self, query: &str) -> Result<Vec<User>, ClientError> {
        let session = self.session();
        let query = query.trim().trim_start_matches('@').to_owned();
        let found =
            runtime::run(async move { session.search_users(&query, Some(20)).await }).await?;
        let me = self.me().user_id();
        Ok(found
            .iter()
            .filter(|p| p.id.0 != me)
            .map(|p| self.user(p))
            .collect())
    }

    /// The direct chat with `user` (created on first use).
    pub async fn open_direct(&self, user: &User) -> Result<Chat, ClientError> {
        let _ = user;
        Err(not_available())
    }

    /// A new group with `members` and me.
    pub async fn create_group(&self, title: &str, members: &[User]) -> Result<Chat, ClientError> {
        let _ = (title, members);
        Err(not_available())
    }

    /// Sends `text` (Markdown) to `chat`, optionally as a reply. The message
    /// shows at once as pending and gets its ticks when the server stores it.
    pub fn send(&self, chat: &Chat, text: &str, reply_to: i64) {
        let id = client_msg_id();
        let now = glib::real_time() / 1000;
        let message = Message::outgoing(chat.chat_id(), &id, &self.me(), text, now);
        message.set_reply_to(reply_to);
        chat.add_message(&message, false);
        message.set_status(crate::models::MessageStatus::Failed);
        FerrogramApplication::get().toast(&crate::error::user_message(&not_available()));
    }

    pub async fn edit(
        &self,
        chat: &Chat,
        message: &Message,
        text: &str,
    ) -> Result<(), ClientError> {
        let _ = (chat, message, text);
        Err(not_available())
    }

    pub async fn delete(&self, chat: &Chat, message: &Message) -> Result<(), ClientError> {
        let _ = (chat, message);
        Err(not_available())
    }

    /// Loads the page of messages before the oldest one shown.
    pub async fn load_earlier(&self, chat: &Chat) -> Result<(), ClientError> {
        chat.messages().set_has_more(false);
        Ok(())
    }

    /// Tells the server (and so the sender) that everything shown was read.
    pub fn mark_read(&self, chat: &Chat) {
        let _ = chat.mark_all_read();
    }

    /// Tells the other members that I am typing (the view throttles it).
    pub fn typing(&self, chat: &Chat) {
        let _ = chat;
    }

    /// A contact's fingerprint and our safety number with them.
    pub async fn contact_keys(&self, user: &User) -> Result<ContactKeys, ClientError> {
        let session = self.session();
        let id = ferrogram_core::ids::UserId(user.user_id());
        let (theirs, mine) = runtime::run(async move {
            let theirs = session.user_keys(id).await?;
            let mine = session.cached_me().public_keys;
            Ok::<_, ClientError>((theirs, mine))
        })
        .await?;
        let safety_number = ferrogram_core::crypto::safety_number(&mine, &theirs.public_keys);
        if !user.fingerprint().is_empty()
            && !ferrogram_core::crypto::fingerprints_match(&user.fingerprint(), &theirs.fingerprint)
        {
            user.set_key_changed(true);
        }
        user.set_fingerprint(theirs.fingerprint.clone());
        Ok(ContactKeys {
            fingerprint: theirs.fingerprint,
            safety_number,
        })
    }

    /// The user compared the safety number in person.
    pub fn mark_verified(&self, user: &User) {
        user.set_verified(true);
        user.set_key_changed(false);
    }
}

fn not_available() -> ClientError {
    ClientError::Protocol(tr("messaging needs a newer client library"))
}

/// A fresh random client message id (a retry reuses it).
fn client_msg_id() -> String {
    use std::fmt::Write as _;
    let bytes: [u8; 16] = rand_bytes();
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn rand_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    let a = glib::random_int().to_le_bytes();
    let b = glib::random_int().to_le_bytes();
    let c = glib::random_int().to_le_bytes();
    let d = glib::random_int().to_le_bytes();
    out[..4].copy_from_slice(&a);
    out[4..8].copy_from_slice(&b);
    out[8..12].copy_from_slice(&c);
    out[12..].copy_from_slice(&d);
    out
}
