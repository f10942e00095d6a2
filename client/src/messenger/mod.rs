//! End-to-end encrypted messaging over the WebSocket gateway.
//!
//! A [`Messenger`] runs on a logged-in [`Session`]: one WebSocket
//! (`ws://` or `wss://.../api/v1/ws`, the token in the first frame), commands
//! with ids and timeouts, and a stream of typed [`ClientEvent`]s. It
//! reconnects by itself (exponential backoff with jitter) and, each time,
//! lists the chats and resumes every chat from the last seq in the local
//! [`Store`], so each event arrives exactly once and in order, also after
//! days offline.
//!
//! Messages are sealed here for every member of the chat, this account
//! included, and signed; received ones are verified and decrypted here.
//! Contacts' keys are pinned on first sight; when the server later lists
//! other keys, a [`ClientEvent::KeyChanged`] is reported, messages signed
//! with the new key are flagged ([`Verification::KeyChanged`]) and nothing
//! is encrypted to it until [`Messenger::accept_key_change`].
//!
//! ```no_run
//! # async fn demo(session: ferrogram_client::Session) -> Result<(), ferrogram_client::MessengerError> {
//! use std::sync::Arc;
//! use ferrogram_client::{ClientEvent, Messenger, MessengerOptions, Store};
//! use ferrogram_client::proto::MessagePayload;
//! let store = Store::open("/tmp/ada.sqlite3", session.user_id())?;
//! let (messenger, mut events) =
//!     Messenger::connect(Arc::new(session), Some(store), MessengerOptions::default()).await?;
//! let chat = messenger.create_direct(ferrogram_client::UserId(2)).await?;
//! messenger.send(chat.id, MessagePayload::text("hello")).await?;
//! while let Some(event) = events.next().await {
//!     if let ClientEvent::MessageReceived(message) = event {
//!         println!("{}: {:?}", message.sender, message.text());
//!     }
//! }
//! # Ok(()) }
//! ```

mod error;
mod events;
mod keys;
mod link;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use ferrogram_core::command::Command;
use ferrogram_core::commands;
use ferrogram_core::crypto::{self, envelope::seal_payload, Identity};
use ferrogram_core::ids::{ChatId, Seq, Timestamp, UserId};
use ferrogram_core::proto::{
    AddMembersRequest, Chat, ChatList, ChatListRequest, ChatMemberRequest, ChatRef, ChatSummary,
    CreateDirectRequest, CreateGroupRequest, DeleteMessageRequest, EditMessageRequest, Empty,
    Envelope, EnvelopeHeader, GroupAddPolicy, HistoryPage, HistoryRequest, Invitation,
    InvitationList, MarkReadRequest, Me, MessageAck, MessagePayload, PresenceInfo, PresenceList,
    PresenceRequest, PublicKeys, RenameChatRequest, Role, SendMessageRequest, SetRoleRequest,
    UpdateProfileRequest,
};
use ferrogram_core::ErrorCode;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};
use zeroize::Zeroizing;

pub use crate::messages::{Message, MessageDeletion, MessageEdit, Verification};
pub use error::MessengerError;
pub use events::{ChatChange, ChatChangeKind, ChatEntry, ClientEvent, ConnectionState, History};

use crate::error::KeyError;
use crate::session::Session;
use crate::store::{self, Store};
use link::Link;

type Result<T, E = MessengerError> = std::result::Result<T, E>;

/// Largest page `message.history` answers.
pub const MAX_HISTORY_PAGE: u32 = 200;

/// Tunables of a [`Messenger`].
#[derive(Debug, Clone)]
pub struct MessengerOptions {
    /// Time allowed for one command's answer (waiting for a connection included).
    pub request_timeout: Duration,
    /// Time allowed to open and authenticate one connection.
    pub connect_timeout: Duration,
    /// How long [`Messenger::send`] keeps retrying the same message (same
    /// client message id, so it is stored once) across reconnects.
    pub send_deadline: Duration,
    /// First reconnect delay; doubled per failed attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// How often the client pings the server.
    pub ping_interval: Duration,
    /// A connection from which nothing was heard for this long is dropped
    /// and reopened.
    pub dead_after: Duration,
    /// Events buffered per subscriber before it lags ([`ClientEvent::Lagged`]).
    pub event_capacity: usize,
    /// With a store: catch up on every connection and report each new event
    /// (needs the private keys). Off, the store only keeps the pinned keys
    /// and nothing is received (e.g. a command-line `send` that should not
    /// swallow messages a later `watch` is to show).
    pub sync: bool,
}

impl Default for MessengerOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
            send_deadline: Duration::from_secs(120),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            ping_interval: Duration::from_secs(20),
            dead_after: Duration::from_secs(60),
            event_capacity: 4096,
            sync: true,
        }
    }
}

/// A message sealed and ready to send. Sending it again (same
/// `client_msg_id`) never stores it twice: the server answers the stored
/// message with `duplicate: true`.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub chat_id: ChatId,
    pub client_msg_id: String,
    pub payload: MessagePayload,
    pub envelope: Envelope,
}

/// A contact's keys as pinned on this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactKeys {
    pub user_id: UserId,
    /// Fingerprint of the pinned keys (16 groups of 4 hex digits).
    pub fingerprint: String,
    /// The 60-digit number to compare with the contact in person.
    pub safety_number: String,
    /// The user marked the pinned keys verified.
    pub verified: bool,
    /// Other keys the server lists now, not accepted yet.
    pub pending_fingerprint: Option<String>,
    pub pending_safety_number: Option<String>,
}

/// The subscriber side of the event stream.
pub struct EventStream {
    rx: broadcast::Receiver<ClientEvent>,
}

impl EventStream {
    /// The next event; `None` once the messenger is gone. A subscriber that
    /// fell behind gets one [`ClientEvent::Lagged`] for what it missed.
    pub async fn next(&mut self) -> Option<ClientEvent> {
        match self.rx.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Some(ClientEvent::Lagged { missed })
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// What the processor task and the API share.
pub(crate) struct Core {
    session: Arc<Session>,
    me: UserId,
    my_keys: PublicKeys,
    identity: Option<Arc<Identity>>,
    store: Option<Store>,
    link: Link,
    events: broadcast::Sender<ClientEvent>,
    state: watch::Sender<ConnectionState>,
    options: MessengerOptions,
    /// Members' keys as fetched for sending, briefly reused (see `keys.rs`).
    recent_keys: keys::RecentKeys,
    /// To the event processor: my acknowledged messages (see `Inbound::Sent`).
    sent: mpsc::UnboundedSender<link::Inbound>,
}

impl Core {
    pub(crate) async fn call<C: Command>(
        &self,
        request: &C::Req,
        idempotent: bool,
    ) -> Result<C::Resp> {
        let command = C::NAME;
        let body = serde_json::to_value(request).map_err(|source| MessengerError::Encode {
            command: command.to_owned(),
            source,
        })?;
        let answer = self
            .link
            .call(command, body, self.options.request_timeout, idempotent)
            .await?;
        serde_json::from_value(answer).map_err(|e| {
            MessengerError::Client(crate::ClientError::Protocol(format!(
                "unexpected answer to {command}: {e}"
            )))
        })
    }

    /// Every page of `chat.list`, in order; a chat that comes twice (its
    /// last message was deleted while paging) is kept once.
    pub(crate) async fn list_all_chats(&self) -> Result<Vec<ChatSummary>> {
        let mut chats: Vec<ChatSummary> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut request = ChatListRequest::default();
        loop {
            let page: ChatList = self.call::<commands::ListChats>(&request, true).await?;
            let before = chats.len();
            for chat in page.chats {
                if seen.insert(chat.id) {
                    chats.push(chat);
                }
            }
            match page.next_cursor {
                // A page that brings nothing new ends it too: a server that
                // kept answering the same page would never let sync finish.
                Some(cursor) if chats.len() > before => request.cursor = Some(cursor),
                _ => return Ok(chats),
            }
        }
    }

    /// Hands my acknowledged message to the event processor, which stores
    /// and reports it in seq order like a received one.
    fn sent(&self, outgoing: &OutgoingMessage, envelope: &Envelope, ack: &MessageAck) {
        let message = Message {
            chat_id: ack.chat_id,
            seq: ack.seq,
            sender: self.me,
            client_msg_id: outgoing.client_msg_id.clone(),
            sent_at: envelope.header.sent_at,
            at: ack.at,
            payload: Some(outgoing.payload.clone()),
            verification: Verification::Own,
            edited_seq: None,
            deleted: false,
        };
        // The processor is gone only when the messenger is.
        let _ = self.sent.send(link::Inbound::Sent {
            message: Box::new(message),
            key_id: envelope.sender_key.0.clone(),
        });
    }

    pub(crate) fn emit(&self, event: ClientEvent) {
        // No subscriber is fine: the store keeps what matters.
        let _ = self.events.send(event);
    }

    pub(crate) fn set_state(&self, state: ConnectionState) {
        let changed = self.state.send_if_modified(|current| {
            if *current == state {
                false
            } else {
                *current = state.clone();
                true
            }
        });
        if changed {
            self.emit(ClientEvent::Connection(state));
        }
    }

    pub(crate) fn store(&self) -> Result<&Store> {
        self.store.as_ref().ok_or(MessengerError::NoStore)
    }

    pub(crate) fn identity(&self) -> Result<Arc<Identity>> {
        self.identity.clone().ok_or(MessengerError::Locked)
    }
}

/// A running messenger. Cheap to clone; closes when the last clone is
/// dropped (or on [`Messenger::close`]).
#[derive(Clone)]
pub struct Messenger {
    inner: Arc<Inner>,
}

struct Inner {
    core: Arc<Core>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.core.link.close();
    }
}

impl std::fmt::Debug for Messenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messenger")
            .field("user", &self.inner.core.me)
            .field("store", &self.inner.core.store)
            .finish_non_exhaustive()
    }
}

impl Messenger {
    /// Opens the WebSocket for `session` and starts the messenger.
    ///
    /// With a `store` (and [`MessengerOptions::sync`], the default; this
    /// needs the session's private keys: a log-in with the password, or
    /// [`Session::unlock`]) it syncs: it resumes every chat from the store's
    /// positions and reports each new event once. Without one it only runs
    /// commands (chat management, and sending when the keys are open, then
    /// without key pinning) and reports live events.
    ///
    /// Fails at once when the server cannot be reached or refuses the
    /// session; once connected it reconnects by itself until closed or the
    /// session ends. The returned stream is subscribed before anything
    /// happens, so it misses nothing.
    pub async fn connect(
        session: Arc<Session>,
        store: Option<Store>,
        options: MessengerOptions,
    ) -> Result<(Messenger, EventStream)> {
        let identity = session.identity();
        if options.sync && store.is_some() && identity.is_none() {
            return Err(MessengerError::Locked);
        }
        let me = session.cached_me();
        if let Some(identity) = &identity {
            if identity.public_keys() != me.public_keys {
                return Err(KeyError::NotTheAccountsKeys.into());
            }
        }
        let addr = session.client().addr().clone();
        let token = Zeroizing::new(session.token().to_owned());
        let socket = crate::ws::open(&addr, &token, options.connect_timeout).await?;
        let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
        let sent = inbound_tx.clone();
        let link = Link::start(addr, token, options.clone(), socket, inbound_tx);
        let (events, rx) = broadcast::channel(options.event_capacity.max(16));
        let (state, _) = watch::channel(ConnectionState::Connecting);
        let core = Arc::new(Core {
            session,
            me: me.id,
            my_keys: me.public_keys,
            identity,
            store,
            link,
            events,
            state,
            options,
            recent_keys: keys::RecentKeys::default(),
            sent,
        });
        tokio::spawn(sync::process(Arc::clone(&core), inbound_rx));
        let messenger = Messenger {
            inner: Arc::new(Inner { core }),
        };
        Ok((messenger, EventStream { rx }))
    }

    fn core(&self) -> &Core {
        &self.inner.core
    }

    /// Another subscriber to the events from now on.
    pub fn subscribe(&self) -> EventStream {
        EventStream {
            rx: self.core().events.subscribe(),
        }
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.core().session
    }

    pub fn user_id(&self) -> UserId {
        self.core().me
    }

    pub fn store(&self) -> Option<&Store> {
        self.core().store.as_ref()
    }

    pub fn connection_state(&self) -> ConnectionState {
        self.core().state.borrow().clone()
    }

    /// Waits until connected and caught up with everything missed
    /// ([`ConnectionState::Connected`]), at most `timeout`.
    pub async fn wait_synced(&self, timeout: Duration) -> Result<()> {
        let mut state = self.core().state.subscribe();
        let wait = async {
            loop {
                match &*state.borrow_and_update() {
                    ConnectionState::Connected => return Ok(()),
                    ConnectionState::Offline { reason } => {
                        return Err(MessengerError::Offline(reason.clone()))
                    }
                    _ => {}
                }
                if state.changed().await.is_err() {
                    return Err(MessengerError::Offline("the messenger stopped".into()));
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or_else(|_| {
                Err(MessengerError::Timeout {
                    command: "sync".into(),
                    after: timeout,
                })
            })
    }

    /// Closes the connection for good. Pending commands fail with `Offline`.
    pub fn close(&self) {
        self.core().link.close();
    }

    /// Calls any declared command (`ferrogram_core::commands`) with its
    /// typed request. Not repeated when the connection drops.
    pub async fn call<C: Command>(&self, request: &C::Req) -> Result<C::Resp> {
        self.core().call::<C>(request, false).await
    }

    // ---- chats ----

    /// `chat.list`: my chats with their last message, unread count and read
    /// position, the most recently active first: every page of it.
    pub async fn list_chats(&self) -> Result<Vec<ChatSummary>> {
        self.core().list_all_chats().await
    }

    /// `chat.get`: a chat with its members.
    pub async fn get_chat(&self, chat_id: ChatId) -> Result<Chat> {
        self.core()
            .call::<commands::GetChat>(&ChatRef { chat_id }, true)
            .await
    }

    /// `chat.create_direct`: the one direct chat with `user_id` (created on first use).
    pub async fn create_direct(&self, user_id: UserId) -> Result<Chat> {
        self.core()
            .call::<commands::CreateDirectChat>(&CreateDirectRequest { user_id }, true)
            .await
    }

    /// `chat.create_group`: a group with me as owner.
    pub async fn create_group(&self, title: &str, member_ids: &[UserId]) -> Result<Chat> {
        let request = CreateGroupRequest {
            title: title.to_owned(),
            member_ids: member_ids.to_vec(),
        };
        self.core()
            .call::<commands::CreateGroup>(&request, false)
            .await
    }

    /// `chat.rename` (admins).
    pub async fn rename_chat(&self, chat_id: ChatId, title: &str) -> Result<Chat> {
        let request = RenameChatRequest {
            chat_id,
            title: title.to_owned(),
        };
        self.core()
            .call::<commands::RenameChat>(&request, false)
            .await
    }

    /// `chat.add_members` (admins).
    pub async fn add_members(&self, chat_id: ChatId, user_ids: &[UserId]) -> Result<Chat> {
        let request = AddMembersRequest {
            chat_id,
            user_ids: user_ids.to_vec(),
        };
        self.core()
            .call::<commands::AddMembers>(&request, false)
            .await
    }

    /// `chat.invitations`: my pending invitations to groups, newest first.
    pub async fn invitations(&self) -> Result<Vec<Invitation>> {
        let list: InvitationList = self
            .core()
            .call::<commands::ListInvitations>(&Empty {}, true)
            .await?;
        Ok(list.invitations)
    }

    /// `chat.accept_invitation`: join the group I was invited to.
    pub async fn accept_invitation(&self, chat_id: ChatId) -> Result<Chat> {
        self.core()
            .call::<commands::AcceptInvitation>(&ChatRef { chat_id }, false)
            .await
    }

    /// `chat.decline_invitation`: the invitation is gone.
    pub async fn decline_invitation(&self, chat_id: ChatId) -> Result<()> {
        let _: Empty = self
            .core()
            .call::<commands::DeclineInvitation>(&ChatRef { chat_id }, false)
            .await?;
        Ok(())
    }

    /// `me.update` with only the privacy setting "who can add me to
    /// groups"; answers my account as it is now.
    pub async fn set_who_can_add_me(&self, policy: GroupAddPolicy) -> Result<Me> {
        let request = UpdateProfileRequest {
            who_can_add_me: Some(policy),
            ..UpdateProfileRequest::default()
        };
        self.core().call::<commands::UpdateMe>(&request, true).await
    }

    /// `chat.remove_member` (admins).
    pub async fn remove_member(&self, chat_id: ChatId, user_id: UserId) -> Result<Chat> {
        let request = ChatMemberRequest { chat_id, user_id };
        self.core()
            .call::<commands::RemoveMember>(&request, false)
            .await
    }

    /// `chat.leave` (an owner transfers ownership first).
    pub async fn leave_chat(&self, chat_id: ChatId) -> Result<()> {
        let _: Empty = self
            .core()
            .call::<commands::LeaveChat>(&ChatRef { chat_id }, false)
            .await?;
        Ok(())
    }

    /// `chat.set_role` (owner): make a member admin or member.
    pub async fn set_role(&self, chat_id: ChatId, user_id: UserId, role: Role) -> Result<Chat> {
        let request = SetRoleRequest {
            chat_id,
            user_id,
            role,
        };
        self.core().call::<commands::SetRole>(&request, false).await
    }

    /// `chat.transfer_ownership` (owner).
    pub async fn transfer_ownership(&self, chat_id: ChatId, user_id: UserId) -> Result<Chat> {
        let request = ChatMemberRequest { chat_id, user_id };
        self.core()
            .call::<commands::TransferOwnership>(&request, false)
            .await
    }

    // ---- messages ----

    /// Seals `payload` for every current member (this account included),
    /// signs it and sends it; retries the same message across reconnects
    /// until [`MessengerOptions::send_deadline`]. Answers after the server
    /// committed it. The message is then stored and reported as a
    /// [`ClientEvent::MessageReceived`] with [`Verification::Own`], from the
    /// acknowledgment (the server does not push it back to this connection;
    /// the account's other devices get it as an event).
    pub async fn send(&self, chat_id: ChatId, payload: MessagePayload) -> Result<MessageAck> {
        let outgoing = self.prepare(chat_id, payload).await?;
        self.send_prepared(&outgoing).await
    }

    /// Seals a message without sending it (see [`Messenger::send_prepared`]).
    pub async fn prepare(
        &self,
        chat_id: ChatId,
        payload: MessagePayload,
    ) -> Result<OutgoingMessage> {
        let client_msg_id = new_client_msg_id();
        let envelope = self.seal(chat_id, &client_msg_id, &payload).await?;
        Ok(OutgoingMessage {
            chat_id,
            client_msg_id,
            payload,
            envelope,
        })
    }

    /// Sends (or sends again) a prepared message. If the members changed
    /// since it was sealed, it is sealed again for the current ones under
    /// the same client message id.
    pub async fn send_prepared(&self, outgoing: &OutgoingMessage) -> Result<MessageAck> {
        let deadline = tokio::time::Instant::now() + self.core().options.send_deadline;
        let mut envelope = outgoing.envelope.clone();
        let mut resealed = false;
        loop {
            let request = SendMessageRequest {
                chat_id: outgoing.chat_id,
                client_msg_id: outgoing.client_msg_id.clone(),
                envelope: envelope.clone(),
            };
            match self
                .core()
                .call::<commands::SendMessage>(&request, true)
                .await
            {
                Ok(ack) => {
                    self.core().sent(outgoing, &envelope, &ack);
                    return Ok(ack);
                }
                Err(e) if e.code() == Some(ErrorCode::InvalidEnvelope) && !resealed => {
                    resealed = true;
                    envelope = self
                        .seal(outgoing.chat_id, &outgoing.client_msg_id, &outgoing.payload)
                        .await?;
                }
                Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "message not acknowledged yet; sending it again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Replaces the text of my message at `target_seq` (a new envelope).
    pub async fn edit(
        &self,
        chat_id: ChatId,
        target_seq: Seq,
        payload: MessagePayload,
    ) -> Result<MessageAck> {
        let envelope = self.seal(chat_id, &new_client_msg_id(), &payload).await?;
        let request = EditMessageRequest {
            chat_id,
            target_seq,
            envelope,
        };
        self.core()
            .call::<commands::EditMessage>(&request, true)
            .await
    }

    /// Deletes my message at `target_seq` for everyone.
    pub async fn delete(&self, chat_id: ChatId, target_seq: Seq) -> Result<MessageAck> {
        let request = DeleteMessageRequest {
            chat_id,
            target_seq,
        };
        self.core()
            .call::<commands::DeleteMessage>(&request, true)
            .await
    }

    /// A page of the chat's log from the server, every message verified and
    /// decrypted (`before`/`after` are exclusive seqs; `limit` at most
    /// [`MAX_HISTORY_PAGE`]). The page is not added to the store or the
    /// event stream.
    pub async fn history(
        &self,
        chat_id: ChatId,
        before: Option<Seq>,
        after: Option<Seq>,
        limit: u32,
    ) -> Result<History> {
        let request = HistoryRequest {
            chat_id,
            before_seq: before,
            after_seq: after,
            limit: Some(limit.clamp(1, MAX_HISTORY_PAGE)),
        };
        let page: HistoryPage = self
            .core()
            .call::<commands::GetHistory>(&request, true)
            .await?;
        let mut entries = Vec::with_capacity(page.events.len());
        for event in page.events {
            entries.push(sync::decode(self.core(), event).await?);
        }
        Ok(History {
            entries,
            more: page.more,
        })
    }

    /// Messages this device received, from the local store: up to `limit`
    /// before `before` (or the newest), oldest first, edits and deletions applied.
    pub async fn stored_messages(
        &self,
        chat_id: ChatId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        self.core()
            .store()?
            .run(move |conn| store::messages(conn, chat_id, before, limit))
            .await
            .map_err(MessengerError::from)
    }

    /// Marks the chat read up to `seq`; the other members get a read receipt.
    pub async fn mark_read(&self, chat_id: ChatId, seq: Seq) -> Result<()> {
        let _: Empty = self
            .core()
            .call::<commands::MarkRead>(&MarkReadRequest { chat_id, seq }, true)
            .await?;
        Ok(())
    }

    /// Tells the other members I am typing (not stored).
    pub async fn typing(&self, chat_id: ChatId) -> Result<()> {
        let _: Empty = self
            .core()
            .call::<commands::Typing>(&ChatRef { chat_id }, true)
            .await?;
        Ok(())
    }

    /// Online state and last seen time of users who share a chat with me.
    pub async fn presence(&self, user_ids: &[UserId]) -> Result<Vec<PresenceInfo>> {
        let request = PresenceRequest {
            user_ids: user_ids.to_vec(),
        };
        let list: PresenceList = self
            .core()
            .call::<commands::GetPresence>(&request, true)
            .await?;
        Ok(list.users)
    }

    // ---- keys ----

    /// The contact's pinned keys (pinned now if this is the first sight),
    /// their safety number with mine, and any key change waiting.
    pub async fn contact_keys(&self, user_id: UserId) -> Result<ContactKeys> {
        keys::contact_keys(self.core(), user_id).await
    }

    /// The safety number of the contact's pinned keys and mine.
    pub async fn safety_number(&self, user_id: UserId) -> Result<String> {
        Ok(self.contact_keys(user_id).await?.safety_number)
    }

    /// Records that the user compared the safety number in person. Refused
    /// while a key change waits (accept it first, then compare again).
    pub async fn mark_verified(&self, user_id: UserId) -> Result<()> {
        let keys = self.contact_keys(user_id).await?;
        if let Some(new_fingerprint) = keys.pending_fingerprint {
            return Err(MessengerError::KeyChanged {
                user_id,
                new_fingerprint,
            });
        }
        self.core()
            .store()?
            .run(move |conn| store::set_verified(conn, user_id, true).map(|_| ()))
            .await
            .map_err(MessengerError::from)
    }

    /// Accepts the contact's new keys: they become the pinned keys (not
    /// verified), messages flagged for them become trusted, and messages are
    /// encrypted to them from now on.
    pub async fn accept_key_change(&self, user_id: UserId) -> Result<()> {
        keys::accept_change(self.core(), user_id).await
    }

    // ---- sealing ----

    async fn seal(
        &self,
        chat_id: ChatId,
        client_msg_id: &str,
        payload: &MessagePayload,
    ) -> Result<Envelope> {
        let core = self.core();
        let identity = core.identity()?;
        let chat = self.get_chat(chat_id).await?;
        let mut recipients = Vec::with_capacity(chat.members.len());
        let lookups = chat
            .members
            .iter()
            .map(|member| keys::keys_for_sending(core, member.user.id));
        for (member, keys) in chat
            .members
            .iter()
            .zip(futures_util::future::join_all(lookups).await)
        {
            recipients.push((member.user.id, keys?));
        }
        let header = EnvelopeHeader {
            chat_id,
            sender: core.me,
            client_msg_id: client_msg_id.to_owned(),
            sent_at: Timestamp::now(),
        };
        let payload = payload.clone();
        tokio::task::spawn_blocking(move || {
            seal_payload(&payload, header, &identity, &recipients, &mut rand::rng())
        })
        .await
        .map_err(|source| KeyError::Interrupted {
            work: "sealing",
            source,
        })?
        .map_err(|e| KeyError::SealMessage(e).into())
    }
}

/// 128 random bits, hex: unique per message without coordination.
fn new_client_msg_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The fingerprint people read, for keys as pinned.
pub(crate) fn fingerprint(keys: &PublicKeys) -> String {
    crypto::fingerprint(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_message_ids_are_random_hex_within_the_limit() {
        let a = new_client_msg_id();
        let b = new_client_msg_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.len() <= crypto::envelope::MAX_CLIENT_MSG_ID_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
