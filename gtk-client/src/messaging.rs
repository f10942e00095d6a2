//! The signed-in session's live side, on the client library's `Messenger`:
//! keeps the chat list, the messages and the users in step with the server's
//! event stream, and carries out what the views ask (send, edit, delete,
//! history, read receipts, typing, contact keys).
//!
//! Network calls run on tokio through [`runtime`]; events are carried over a
//! channel to the GLib main loop and applied to the models there. Every task
//! is aborted in [`Messaging::stop`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use ferrogram_client::proto::{self, ChatKind, ChatSummary, MessagePayload, UserProfile};
use ferrogram_client::{
    ChatChangeKind, ChatId, ClientError, ClientEvent, ConnectionState as LinkState, Messenger,
    MessengerError, MessengerOptions, Seq, Session, Store, Timestamp, UserId, Verification,
};
use gtk::prelude::*;
use gtk::{gio, glib};

use crate::error::messenger_message;
use crate::i18n::{tr, tr_args};
use crate::models::{
    Account, Chat, ChatList, ConnectionState, Message, MessageStatus, Trust, User,
};
use crate::runtime;

/// Messages fetched per "load earlier".
const PAGE: u32 = 50;
/// How long "typing…" stays without a new typing signal.
const TYPING_SHOWN_FOR: Duration = Duration::from_secs(6);
/// Delay between attempts while the first connection cannot be made.
const RETRY_FIRST_CONNECT: Duration = Duration::from_secs(5);

/// A contact's keys as shown in the safety number dialog.
#[derive(Debug, Clone)]
pub struct ContactKeys {
    pub fingerprint: String,
    pub safety_number: String,
    /// A new key waits to be accepted; these are its numbers.
    pub pending_fingerprint: Option<String>,
    pub pending_safety_number: Option<String>,
}

type Result<T> = std::result::Result<T, MessengerError>;

/// What a signed-in session and its live side need from the application
/// that holds them: given in at sign-in, so that neither names the
/// application or its window (the application implements it).
pub trait SessionHost {
    /// Shows a short notice in the main window.
    fn toast(&self, text: &str);
    /// Shows an error: a toast, or the log-in screen when the session ended.
    fn report(&self, err: &ClientError);
    /// Forgets the session here (after revoke, deletion or expiry), with a
    /// notice for the log-in screen.
    fn end(&self, notice: Option<String>) -> Pin<Box<dyn Future<Output = ()>>>;
    /// Logs out on the server (best effort), then forgets the session here.
    fn log_out(&self) -> Pin<Box<dyn Future<Output = ()>>>;
    /// The main window (the parent of dialogs; active: the user looks).
    fn window(&self) -> Option<gtk::Window>;
    /// The chat on screen in the main window, if any.
    fn current_chat(&self) -> Option<Chat>;
    /// Sends a desktop notification (`id` replaces an earlier one).
    fn notify(&self, id: &str, notification: &gio::Notification);
}

#[derive(Clone)]
pub struct Messaging {
    inner: Rc<Inner>,
}

struct Inner {
    /// For toasts, notifications, the window and the end of the session.
    host: Rc<dyn SessionHost>,
    session: Arc<Session>,
    chats: ChatList,
    account: Account,
    users: RefCell<HashMap<i64, User>>,
    messenger: RefCell<Option<Messenger>>,
    /// Tokio tasks (the event pump) to abort on stop.
    tasks: RefCell<Vec<tokio::task::AbortHandle>>,
    /// Main-loop tasks applying results.
    local_tasks: RefCell<Vec<glib::JoinHandle<()>>>,
    /// Per chat, which "typing" signal is the latest (to clear it in time).
    typing_generation: RefCell<HashMap<i64, u64>>,
    /// Invitations that came while the app was closed were asked about.
    invitations_asked: Cell<bool>,
    stopped: Cell<bool>,
}

/// Invitations asked about at start-up, newest first; the rest stay
/// pending (so a flood of invitations is not a flood of dialogs).
const INVITATIONS_ASKED_AT_START: usize = 3;

impl Messaging {
    pub fn start(
        host: Rc<dyn SessionHost>,
        session: Arc<Session>,
        account: &Account,
        chats: &ChatList,
    ) -> Self {
        let me = account.user();
        let inner = Inner {
            host,
            session,
            chats: chats.clone(),
            account: account.clone(),
            users: RefCell::new(HashMap::from([(me.user_id(), me)])),
            messenger: RefCell::default(),
            tasks: RefCell::default(),
            local_tasks: RefCell::default(),
            typing_generation: RefCell::default(),
            invitations_asked: Cell::new(false),
            stopped: Cell::new(false),
        };
        let messaging = Self {
            inner: Rc::new(inner),
        };
        messaging.spawn_local(glib::clone!(
            #[strong]
            messaging,
            async move { messaging.connect().await }
        ));
        messaging
    }

    /// Closes the connection and aborts every task of this session.
    pub fn stop(&self) {
        self.inner.stopped.set(true);
        if let Some(messenger) = self.inner.messenger.take() {
            messenger.close();
        }
        for task in self.inner.tasks.take() {
            task.abort();
        }
        for task in self.inner.local_tasks.take() {
            task.abort();
        }
        self.inner.account.set_connection(ConnectionState::Offline);
    }

    fn spawn_local(&self, future: impl std::future::Future<Output = ()> + 'static) {
        let handle = glib::spawn_future_local(future);
        self.inner.local_tasks.borrow_mut().push(handle);
    }

    pub fn toast(&self, text: &str) {
        self.inner.host.toast(text);
    }

    async fn end_session(&self) {
        let notice = tr("Your session has ended. Please log in again.");
        self.inner.host.end(Some(notice)).await;
    }

    /// The chat on screen in the main window, if any.
    fn current_chat(&self) -> Option<Chat> {
        self.inner.host.current_chat()
    }

    pub fn session(&self) -> Arc<Session> {
        self.inner.session.clone()
    }

    pub fn me(&self) -> User {
        self.inner.account.user()
    }

    fn messenger(&self) -> Result<Messenger> {
        self.inner
            .messenger
            .borrow()
            .clone()
            .ok_or_else(|| MessengerError::Offline(tr("not connected yet")))
    }

    /// The one `User` object for a profile (so names and presence update everywhere).
    pub fn user(&self, profile: &UserProfile) -> User {
        let user = self.user_by_id(profile.id.0);
        user.set_handle(profile.handle.clone());
        user.set_display_name(profile.display_name.clone());
        user
    }

    /// The user with this id; a placeholder until their profile is known.
    fn user_by_id(&self, id: i64) -> User {
        self.inner
            .users
            .borrow_mut()
            .entry(id)
            .or_insert_with(|| User::new(id, "", &tr_args("User {id}", &[("id", &id.to_string())])))
            .clone()
    }

    /// Opens the WebSocket with the local store, then loads the chats and
    /// follows the event stream. A first connection that fails is retried;
    /// after that the library reconnects by itself.
    async fn connect(&self) {
        self.inner
            .account
            .set_connection(ConnectionState::Connecting);
        let session = self.session();
        let user_id = session.user_id();
        let data_dir = glib::user_data_dir().join("ferrogram");
        let addr = session.client().addr().clone();
        loop {
            let session = session.clone();
            let path = Store::path_for(&data_dir, &addr, user_id);
            let connected = runtime::run(async move {
                let store = Store::open(path, user_id)?;
                Messenger::connect(session, Some(store), MessengerOptions::default()).await
            })
            .await;
            if self.inner.stopped.get() {
                return;
            }
            match connected {
                Ok((messenger, mut events)) => {
                    self.inner.messenger.replace(Some(messenger));
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                    let pump = runtime::spawn(async move {
                        while let Some(event) = events.next().await {
                            if tx.send(event).is_err() {
                                break;
                            }
                        }
                    });
                    self.inner.tasks.borrow_mut().push(pump.abort_handle());
                    if let Err(e) = self.load_chats().await {
                        tracing::warn!("loading the chats: {e}");
                        self.toast(&messenger_message(&e));
                    }
                    while let Some(event) = rx.recv().await {
                        self.apply(event).await;
                    }
                    return;
                }
                Err(e) if e.is_unauthorized() => {
                    self.end_session().await;
                    return;
                }
                Err(e) => {
                    tracing::info!("cannot connect yet: {e}");
                    self.inner.account.set_connection(ConnectionState::Offline);
                    glib::timeout_future(RETRY_FIRST_CONNECT).await;
                    if self.inner.stopped.get() {
                        return;
                    }
                    self.inner
                        .account
                        .set_connection(ConnectionState::Connecting);
                }
            }
        }
    }

    /// Fills the chat list from the server and the messages from the local store.
    async fn load_chats(&self) -> Result<()> {
        let messenger = self.messenger()?;
        let summaries = {
            let m = messenger.clone();
            runtime::run(async move { m.list_chats().await }).await?
        };
        let mut peers = Vec::new();
        for summary in &summaries {
            let chat = self.chat_from_summary(summary);
            if let Some(peer) = chat.peer() {
                peers.push(UserId(peer.user_id()));
            }
            let (m, id) = (messenger.clone(), summary.id);
            let stored = runtime::run(async move { m.stored_messages(id, None, PAGE).await }).await;
            match stored {
                Ok(messages) => {
                    for message in &messages {
                        self.add_received(&chat, message, false);
                    }
                    chat.messages().set_has_more(
                        messages.first().is_some_and(|m| m.seq > Seq::new(1))
                            || messages.is_empty() && summary.last_seq > Seq::ZERO,
                    );
                }
                Err(e) => tracing::warn!("stored messages of chat {}: {e}", summary.id),
            }
            if summary.kind == ChatKind::Group {
                self.load_members(summary.id);
            }
        }
        if !peers.is_empty() {
            let m = messenger.clone();
            if let Ok(presence) = runtime::run(async move { m.presence(&peers).await }).await {
                for info in presence {
                    let user = self.user_by_id(info.user_id.0);
                    user.set_online(info.online);
                    user.set_last_seen(info.last_seen_at.map_or(0, Timestamp::as_millis));
                }
            }
        }
        Ok(())
    }

    /// The chat model for a summary (added to the list if new).
    fn chat_from_summary(&self, summary: &ChatSummary) -> Chat {
        if let Some(chat) = self.inner.chats.by_id(summary.id.0) {
            chat.messages()
                .mark_read_by_others(summary.others_read_seq.get());
            chat.messages()
                .mark_delivered_by_others(summary.others_delivered_seq.get());
            return chat;
        }
        let chat = match (&summary.kind, &summary.peer) {
            (ChatKind::Direct, Some(peer)) => Chat::new_direct(summary.id.0, &self.user(peer)),
            _ => Chat::new_group(
                summary.id.0,
                summary.title.as_deref().unwrap_or_default(),
                summary.member_count,
            ),
        };
        chat.set_read_seq(summary.my_read_seq.get());
        chat.messages()
            .mark_read_by_others(summary.others_read_seq.get());
        chat.messages()
            .mark_delivered_by_others(summary.others_delivered_seq.get());
        if let Some(last) = &summary.last_message {
            chat.set_last_activity(last.at.as_millis());
        }
        self.inner.chats.add(&chat)
    }

    /// The chat model for a chat from a create command.
    fn chat_from_full(&self, chat: &proto::Chat) -> Chat {
        if let Some(existing) = self.inner.chats.by_id(chat.id.0) {
            return existing;
        }
        let me = self.me().user_id();
        for member in &chat.members {
            self.user(&member.user);
        }
        let model = match chat.kind {
            ChatKind::Direct => {
                let peer = chat
                    .members
                    .iter()
                    .find(|m| m.user.id.0 != me)
                    .map_or_else(|| self.me(), |m| self.user(&m.user));
                Chat::new_direct(chat.id.0, &peer)
            }
            ChatKind::Group => Chat::new_group(
                chat.id.0,
                chat.title.as_deref().unwrap_or_default(),
                chat.members.len() as u32,
            ),
        };
        model.set_last_activity(chat.created_at.as_millis());
        self.inner.chats.add(&model)
    }

    /// Fetches a group's members so their names show on their messages.
    fn load_members(&self, chat_id: ChatId) {
        let Ok(messenger) = self.messenger() else {
            return;
        };
        self.spawn_local(glib::clone!(
            #[strong(rename_to = this)]
            self,
            async move {
                if let Ok(chat) =
                    runtime::run(async move { messenger.get_chat(chat_id).await }).await
                {
                    for member in &chat.members {
                        this.user(&member.user);
                    }
                    if let Some(model) = this.inner.chats.by_id(chat_id.0) {
                        model.set_member_count(chat.members.len() as u32);
                    }
                }
            }
        ));
    }

    /// A message model from what the library received (or loaded).
    fn message_model(&self, m: &ferrogram_client::Message) -> Message {
        let me = self.me().user_id();
        let sender = self.user_by_id(m.sender.0);
        let message = Message::new(
            m.chat_id.0,
            m.seq.get(),
            &m.client_msg_id,
            Some(&sender),
            m.sender.0 == me,
            m.text().unwrap_or_default(),
            if m.at > Timestamp::EPOCH {
                m.at
            } else {
                m.sent_at
            }
            .as_millis(),
        );
        message.set_trust(trust(&m.verification));
        message.set_edited(m.edited_seq.is_some());
        message.set_deleted(m.deleted);
        if let Some(reply) = m.payload.as_ref().and_then(|p| p.reply_to) {
            message.set_reply_to(reply.get());
        }
        message
    }

    fn add_received(
        &self,
        chat: &Chat,
        m: &ferrogram_client::Message,
        counts_as_unread: bool,
    ) -> Message {
        let model = self.message_model(m);
        chat.add_message(&model, counts_as_unread)
    }

    /// Applies one event of the stream to the models.
    async fn apply(&self, event: ClientEvent) {
        match event {
            ClientEvent::MessageReceived(m) => {
                let chat = match self.inner.chats.by_id(m.chat_id.0) {
                    Some(chat) => chat,
                    None => match self.fetch_chat(m.chat_id).await {
                        Some(chat) => chat,
                        None => return,
                    },
                };
                let known = chat.messages().by_seq(m.seq.get()).is_some();
                let model = self.add_received(&chat, &m, true);
                if !known && !model.is_own() {
                    self.after_incoming(&chat, &model);
                }
            }
            ClientEvent::MessageEdited(edit) => {
                if let Some(chat) = self.inner.chats.by_id(edit.chat_id.0) {
                    let list = chat.messages();
                    if let Some(target) = list.by_seq(edit.target_seq.get()) {
                        if target
                            .sender()
                            .is_some_and(|s| s.user_id() == edit.sender.0)
                        {
                            let text = edit.payload.as_ref().map_or("", |p| p.text.as_str());
                            list.apply_edit(edit.target_seq.get(), text);
                            target.set_trust(trust(&edit.verification));
                            chat.refresh_preview();
                        }
                    }
                }
            }
            ClientEvent::MessageDeleted(deletion) => {
                if let Some(chat) = self.inner.chats.by_id(deletion.chat_id.0) {
                    chat.messages().apply_delete(deletion.target_seq.get());
                    chat.refresh_preview();
                }
            }
            ClientEvent::ChatChanged(change) => {
                let Some(chat) = self.inner.chats.by_id(change.chat_id.0) else {
                    return;
                };
                match change.change {
                    ChatChangeKind::Renamed { title } => chat.set_title(title),
                    ChatChangeKind::MembersAdded { user_ids } => {
                        chat.set_member_count(chat.member_count() + user_ids.len() as u32);
                        self.load_members(change.chat_id);
                    }
                    ChatChangeKind::MemberRemoved { .. } | ChatChangeKind::MemberLeft { .. } => {
                        chat.set_member_count(chat.member_count().saturating_sub(1));
                    }
                    ChatChangeKind::Created { .. } | ChatChangeKind::RoleChanged { .. } => {}
                }
            }
            ClientEvent::Typing { chat_id, user_id } => self.show_typing(chat_id.0, user_id.0),
            ClientEvent::Invited(invitation) => self.ask_to_join(&invitation),
            // An accepted invitation arrives as `ChatJoined` as well.
            ClientEvent::InvitationClosed { .. } => {}
            ClientEvent::ReadReceipt {
                chat_id,
                user_id,
                seq,
            } => {
                let Some(chat) = self.inner.chats.by_id(chat_id.0) else {
                    return;
                };
                if user_id.0 == self.me().user_id() {
                    // Read on another device of mine.
                    if seq.get() >= chat.messages().newest_seq() {
                        chat.mark_all_read();
                    }
                } else {
                    chat.messages().mark_read_by_others(seq.get());
                }
            }
            ClientEvent::DeliveryReceipt {
                chat_id,
                user_id,
                seq,
            } => {
                // My own devices' acknowledgements change no tick.
                if user_id.0 != self.me().user_id() {
                    if let Some(chat) = self.inner.chats.by_id(chat_id.0) {
                        chat.messages().mark_delivered_by_others(seq.get());
                    }
                }
            }
            ClientEvent::ProfileChanged(profile) => {
                let user = self.user(&profile);
                if profile.id.0 == self.me().user_id() && user != self.me() {
                    self.me().set_handle(profile.handle.clone());
                    self.me().set_display_name(profile.display_name.clone());
                }
            }
            ClientEvent::Presence {
                user_id,
                online,
                last_seen_at,
            } => {
                let user = self.user_by_id(user_id.0);
                user.set_online(online);
                if let Some(at) = last_seen_at {
                    user.set_last_seen(at.as_millis());
                }
            }
            ClientEvent::ChatJoined(summary) => {
                self.chat_from_summary(&summary);
                if let Some(peer) = &summary.peer {
                    self.refresh_presence(vec![peer.id]);
                }
                if summary.kind == ChatKind::Group {
                    self.load_members(summary.id);
                }
            }
            ClientEvent::ChatRemoved { chat_id } => {
                self.inner.chats.remove(chat_id.0);
            }
            ClientEvent::KeyChanged { user_id, .. } => {
                let user = self.user_by_id(user_id.0);
                user.set_key_changed(true);
                user.set_verified(false);
            }
            ClientEvent::Connection(state) => self.show_connection(&state).await,
            ClientEvent::Lagged { .. } => {
                if let Err(e) = self.load_chats().await {
                    tracing::warn!("reloading after lag: {e}");
                }
            }
        }
    }

    async fn fetch_chat(&self, chat_id: ChatId) -> Option<Chat> {
        let messenger = self.messenger().ok()?;
        let chat = runtime::run(async move { messenger.get_chat(chat_id).await })
            .await
            .ok()?;
        Some(self.chat_from_full(&chat))
    }

    async fn show_connection(&self, state: &LinkState) {
        let account = &self.inner.account;
        match state {
            LinkState::Connected => {
                let was_offline = account.connection() != ConnectionState::Online;
                account.set_connection(ConnectionState::Online);
                if !self.inner.invitations_asked.replace(true) {
                    self.ask_pending_invitations();
                }
                if was_offline {
                    if let Some(chat) = self.current_chat() {
                        self.mark_read(&chat);
                    }
                }
            }
            LinkState::Connecting | LinkState::Reconnecting { .. } => {
                account.set_connection(ConnectionState::Connecting);
            }
            LinkState::Offline { reason } => {
                account.set_connection(ConnectionState::Offline);
                tracing::info!("messenger offline: {reason}");
                if !self.inner.stopped.get() {
                    // The library stops for good only when the session ended.
                    self.end_session().await;
                }
            }
        }
    }

    /// Marks read (the chat is on screen) or notifies (it is not).
    fn after_incoming(&self, chat: &Chat, message: &Message) {
        let host = &self.inner.host;
        let window_active = host.window().is_some_and(|w| w.is_active());
        let on_screen = self.current_chat().as_ref() == Some(chat);
        if window_active && on_screen {
            self.mark_read(chat);
            return;
        }
        // No notification storm while catching up after being away: the
        // chat list shows those as unread.
        if window_active || self.inner.account.connection() != ConnectionState::Online {
            return;
        }
        let notification = gio::Notification::new(&chat.title());
        let body = if chat.is_group() {
            format!("{}: {}", message.sender_name(), message.preview())
        } else {
            message.preview()
        };
        notification.set_body(Some(&body));
        notification.set_default_action_and_target_value(
            "app.open-chat",
            Some(&chat.chat_id().to_variant()),
        );
        host.notify(&format!("chat-{}", chat.chat_id()), &notification);
    }

    /// The invitations that arrived while the app was closed.
    fn ask_pending_invitations(&self) {
        let Ok(messenger) = self.messenger() else {
            return;
        };
        let messaging = self.clone();
        self.spawn_local(async move {
            match runtime::run(async move { messenger.invitations().await }).await {
                Ok(invitations) => {
                    for invitation in invitations.iter().take(INVITATIONS_ASKED_AT_START) {
                        messaging.ask_to_join(invitation);
                    }
                }
                Err(e) => tracing::info!("cannot list invitations: {e}"),
            }
        });
    }

    /// Asks whether to join a group I was just invited to: until I do, I am
    /// no member and the group sees nothing of me. "Later" leaves the
    /// invitation pending (`ferrogram-cli group invitations` lists it).
    fn ask_to_join(&self, invitation: &proto::Invitation) {
        use adw::prelude::*;
        let (Some(window), Ok(messenger)) = (self.inner.host.window(), self.messenger()) else {
            return;
        };
        let title = invitation.title.clone().unwrap_or_default();
        let inviter = invitation
            .inviter
            .as_ref()
            .map_or_else(|| tr("A deleted account"), |u| u.display_name.clone());
        let count = invitation.member_count.to_string();
        let dialog = adw::MessageDialog::new(
            Some(&window),
            Some(&tr_args("Join “{title}”?", &[("title", &title)])),
            Some(&tr_args(
                "{inviter} invited you to this group of {count} members. You are not a member, and nobody there sees you, until you join.",
                &[("inviter", &inviter), ("count", &count)],
            )),
        );
        dialog.add_response("later", &tr("_Later"));
        dialog.add_response("decline", &tr("_Decline"));
        dialog.add_response("join", &tr("_Join"));
        dialog.set_response_appearance("join", adw::ResponseAppearance::Suggested);
        dialog.set_default_response(Some("join"));
        dialog.set_close_response("later");
        let chat_id = invitation.chat_id;
        let this = self.clone();
        dialog.connect_response(None, move |_, response| {
            let join = match response {
                "join" => true,
                "decline" => false,
                _ => return,
            };
            let messenger = messenger.clone();
            let this = this.clone();
            glib::spawn_future_local(async move {
                let done = runtime::run(async move {
                    if join {
                        messenger.accept_invitation(chat_id).await.map(|_| ())
                    } else {
                        messenger.decline_invitation(chat_id).await
                    }
                })
                .await;
                if let Err(e) = done {
                    this.toast(&messenger_message(&e));
                }
            });
        });
        dialog.present();
    }

    fn show_typing(&self, chat_id: i64, user_id: i64) {
        if user_id == self.me().user_id() {
            return;
        }
        let Some(chat) = self.inner.chats.by_id(chat_id) else {
            return;
        };
        chat.show_typing(Some(&self.user_by_id(user_id).name()));
        let generation = {
            let mut generations = self.inner.typing_generation.borrow_mut();
            let g = generations.entry(chat_id).or_default();
            *g += 1;
            *g
        };
        let this = self.clone();
        glib::timeout_add_local_once(TYPING_SHOWN_FOR, move || {
            let latest = this.inner.typing_generation.borrow().get(&chat_id).copied();
            if latest == Some(generation) {
                chat.show_typing(None);
            }
        });
    }

    /// Users whose handle or name starts with `query` (not me).
    pub async fn search_users(&self, query: &str) -> std::result::Result<Vec<User>, ClientError> {
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
    pub async fn open_direct(&self, user: &User) -> Result<Chat> {
        let messenger = self.messenger()?;
        let id = UserId(user.user_id());
        let chat = runtime::run(async move { messenger.create_direct(id).await }).await?;
        self.refresh_presence(vec![id]);
        Ok(self.chat_from_full(&chat))
    }

    /// Asks for the online state of `users` (after that, events keep it).
    fn refresh_presence(&self, users: Vec<UserId>) {
        let Ok(messenger) = self.messenger() else {
            return;
        };
        self.spawn_local(glib::clone!(
            #[strong(rename_to = this)]
            self,
            async move {
                if let Ok(list) =
                    runtime::run(async move { messenger.presence(&users).await }).await
                {
                    for info in list {
                        let user = this.user_by_id(info.user_id.0);
                        user.set_online(info.online);
                        user.set_last_seen(info.last_seen_at.map_or(0, Timestamp::as_millis));
                    }
                }
            }
        ));
    }

    /// A new group with `members` and me.
    pub async fn create_group(&self, title: &str, members: &[User]) -> Result<Chat> {
        let messenger = self.messenger()?;
        let title = title.to_owned();
        let ids: Vec<UserId> = members.iter().map(|u| UserId(u.user_id())).collect();
        let chat = runtime::run(async move { messenger.create_group(&title, &ids).await }).await?;
        Ok(self.chat_from_full(&chat))
    }

    /// Sends `text` (Markdown) to `chat`, optionally as a reply. The message
    /// shows at once as pending and gets its tick when the server stored it.
    pub fn send(&self, chat: &Chat, text: &str, reply_to: i64) {
        let Ok(messenger) = self.messenger() else {
            self.toast(&tr("Not connected: the message was not sent."));
            return;
        };
        let mut payload = MessagePayload::text(text);
        if reply_to > 0 {
            payload.reply_to = Some(Seq::new(reply_to));
        }
        let chat_id = ChatId(chat.chat_id());
        let (chat, me) = (chat.clone(), self.me());
        let text = text.to_owned();
        let this = self.clone();
        self.spawn_local(async move {
            let m = messenger.clone();
            let prepared = runtime::run(async move { m.prepare(chat_id, payload).await }).await;
            let outgoing = match prepared {
                Ok(outgoing) => outgoing,
                Err(e) => {
                    this.toast(&messenger_message(&e));
                    return;
                }
            };
            let now = glib::real_time() / 1000;
            let pending = Message::outgoing(chat_id.0, &outgoing.client_msg_id, &me, &text, now);
            pending.set_reply_to(reply_to);
            chat.add_message(&pending, false);
            let sent = runtime::run(async move { messenger.send_prepared(&outgoing).await }).await;
            match sent {
                Ok(ack) => {
                    chat.messages().acknowledge(
                        &pending.client_msg_id(),
                        ack.seq.get(),
                        ack.at.as_millis(),
                    );
                    chat.refresh_preview();
                    if ack.seq.get() > chat.read_seq() {
                        chat.set_read_seq(ack.seq.get());
                    }
                }
                Err(e) => {
                    pending.set_status(MessageStatus::Failed);
                    this.toast(&messenger_message(&e));
                }
            }
        });
    }

    pub async fn edit(&self, chat: &Chat, message: &Message, text: &str) -> Result<()> {
        let messenger = self.messenger()?;
        let mut payload = MessagePayload::text(text);
        if message.reply_to() > 0 {
            payload.reply_to = Some(Seq::new(message.reply_to()));
        }
        let (chat_id, seq) = (ChatId(chat.chat_id()), Seq::new(message.seq()));
        runtime::run(async move { messenger.edit(chat_id, seq, payload).await }).await?;
        Ok(())
    }

    pub async fn delete(&self, chat: &Chat, message: &Message) -> Result<()> {
        let messenger = self.messenger()?;
        let (chat_id, seq) = (ChatId(chat.chat_id()), Seq::new(message.seq()));
        runtime::run(async move { messenger.delete(chat_id, seq).await }).await?;
        Ok(())
    }

    /// Loads the page of messages before the oldest one shown, from the
    /// server (verified and decrypted here).
    pub async fn load_earlier(&self, chat: &Chat) -> Result<()> {
        let messenger = self.messenger()?;
        let list = chat.messages();
        let oldest = list.oldest_seq();
        let chat_id = ChatId(chat.chat_id());
        let before = (oldest > 0).then_some(Seq::new(oldest));
        let page =
            runtime::run(async move { messenger.history(chat_id, before, None, PAGE).await })
                .await?;
        for message in page.messages() {
            self.add_received(chat, &message, true);
        }
        list.set_has_more(page.more);
        chat.refresh_preview();
        Ok(())
    }

    /// Tells the server (and so the sender) that everything shown was read.
    pub fn mark_read(&self, chat: &Chat) {
        let Some(seq) = chat.mark_all_read() else {
            return;
        };
        let Ok(messenger) = self.messenger() else {
            return;
        };
        let chat_id = ChatId(chat.chat_id());
        let task = runtime::spawn(async move {
            if let Err(e) = messenger.mark_read(chat_id, Seq::new(seq)).await {
                tracing::info!("mark read: {e}");
            }
        });
        self.inner.tasks.borrow_mut().push(task.abort_handle());
    }

    /// Tells the other members that I am typing (the view throttles it).
    pub fn typing(&self, chat: &Chat) {
        let Ok(messenger) = self.messenger() else {
            return;
        };
        let chat_id = ChatId(chat.chat_id());
        runtime::spawn(async move {
            let _ = messenger.typing(chat_id).await;
        });
    }

    /// A contact's pinned fingerprint and our safety number.
    pub async fn contact_keys(&self, user: &User) -> Result<ContactKeys> {
        let messenger = self.messenger()?;
        let id = UserId(user.user_id());
        let keys = runtime::run(async move { messenger.contact_keys(id).await }).await?;
        user.set_fingerprint(keys.fingerprint.clone());
        user.set_verified(keys.verified);
        user.set_key_changed(keys.pending_fingerprint.is_some());
        Ok(ContactKeys {
            fingerprint: keys.fingerprint,
            safety_number: keys.safety_number,
            pending_fingerprint: keys.pending_fingerprint,
            pending_safety_number: keys.pending_safety_number,
        })
    }

    /// The user compared the safety number in person. A waiting key change
    /// is accepted first (the dialog then showed the new number).
    pub async fn mark_verified(&self, user: &User) -> Result<()> {
        let messenger = self.messenger()?;
        let id = UserId(user.user_id());
        let accept = user.key_changed();
        runtime::run(async move {
            if accept {
                messenger.accept_key_change(id).await?;
            }
            messenger.mark_verified(id).await
        })
        .await?;
        user.set_key_changed(false);
        user.set_verified(true);
        Ok(())
    }
}

fn trust(verification: &Verification) -> Trust {
    match verification {
        Verification::Own | Verification::Verified | Verification::Trusted => Trust::Valid,
        Verification::KeyChanged { .. } => Trust::KeyChanged,
        Verification::Invalid { .. } => Trust::Invalid,
    }
}
