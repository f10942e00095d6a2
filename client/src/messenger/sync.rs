//! The event processor: one task that takes what the connection received,
//! in order, and turns it into [`ClientEvent`]s exactly once.
//!
//! - On every new connection it lists the chats (every page of `chat.list`)
//!   and sends `resume` with the store's last seq per chat (0 for new chats),
//!   so the server sends exactly what was missed, in frames of at most
//!   [`RESUME_CHATS_PER_FRAME`] chats, each after the previous one's
//!   `resumed`; the last `resumed` means caught up ([`ConnectionState::Connected`]).
//! - An event at or below the chat's stored seq is a duplicate and dropped.
//!   One beyond the next expected seq means something was missed (a live
//!   event that overtook the backlog, an earlier failure): the gap is read
//!   from `message.history` first, so every chat is processed in seq order.
//! - Each event is verified, decrypted, stored and its seq recorded in one
//!   transaction, then reported. If that fails for a passing reason (no
//!   answer while fetching keys), the seq is not recorded: the event is
//!   fetched again with the next one of its chat, or by a periodic retry.
//! - What others sent is acknowledged with `message.delivered` once stored:
//!   the highest seq per chat, sent when the queue of received frames runs
//!   empty (or every [`DELIVERY_ACK_EVERY`] events under a steady stream),
//!   so a burst of messages costs one acknowledgement per chat. Positions
//!   are cumulative: a lost acknowledgement is made good by the next one.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ferrogram_core::commands;
use ferrogram_core::crypto::envelope::{open_payload, verify_origin};
use ferrogram_core::ids::{ChatId, Seq, UserId};
use ferrogram_core::proto::ws::{ClientFrame, ResumePosition, ServerFrame};
use ferrogram_core::proto::{
    ChatEvent, Empty, Envelope, EventBody, HistoryPage, HistoryRequest, LiveEvent,
    MarkDeliveredRequest, MessagePayload,
};
use ferrogram_core::ErrorCode;
use tokio::sync::mpsc;

use super::keys::{sender_keys, SenderKeys};
use super::link::Inbound;
use super::{
    ChatChange, ChatChangeKind, ChatEntry, ClientEvent, ConnectionState, Core, Message,
    MessageDeletion, MessageEdit, MessengerError, Result, Verification, MAX_HISTORY_PAGE,
};
use crate::error::KeyError;
use crate::store::{self, StoreError};

/// Chats one `resume` frame names at most: the smallest
/// `limits.max_resume_chats` a server allows.
pub(crate) const RESUME_CHATS_PER_FRAME: usize = 1000;
/// How often chats whose processing failed are fetched again.
const RETRY_INTERVAL: Duration = Duration::from_secs(3);
/// Store key: the first sync is done (later new chats are reported as joined).
const SYNCED_ONCE: &str = "synced_once";
/// Under a steady stream of events, delivery is acknowledged at least this often.
const DELIVERY_ACK_EVERY: usize = 64;

/// Delivery acknowledgements not sent yet: per chat, the highest seq stored
/// of an event someone else caused.
#[derive(Default)]
struct Deliveries {
    pending: BTreeMap<ChatId, Seq>,
    noted: usize,
}

impl Deliveries {
    fn note(&mut self, chat_id: ChatId, seq: Seq) {
        let upto = self.pending.entry(chat_id).or_insert(seq);
        *upto = (*upto).max(seq);
        self.noted += 1;
    }

    /// Sends the acknowledgements when nothing else is waiting, or when
    /// enough have piled up. They are sent from their own tasks: the
    /// processing of events never waits for their answers.
    fn flush_if_due(&mut self, core: &Arc<Core>, idle: bool) {
        if self.pending.is_empty() || !(idle || self.noted >= DELIVERY_ACK_EVERY) {
            return;
        }
        self.noted = 0;
        for (chat_id, seq) in std::mem::take(&mut self.pending) {
            let core = Arc::clone(core);
            tokio::spawn(async move {
                let request = MarkDeliveredRequest { chat_id, seq };
                let sent: Result<Empty> =
                    core.call::<commands::MarkDelivered>(&request, true).await;
                if let Err(e) = sent {
                    tracing::debug!(error = %e, chat = %chat_id, "delivery acknowledgement not sent");
                }
            });
        }
    }
}

pub(crate) async fn process(core: Arc<Core>, mut inbound: mpsc::UnboundedReceiver<Inbound>) {
    let mut stale: BTreeSet<ChatId> = BTreeSet::new();
    let mut deliveries = Deliveries::default();
    // The catching up of the current connection failed and is to be retried.
    let mut needs_sync = false;
    // `resume` frames still to send on the current connection, each after
    // the previous one's `resumed`.
    let mut resumes: VecDeque<Vec<ResumePosition>> = VecDeque::new();
    let mut retry = tokio::time::interval(RETRY_INTERVAL);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let item = tokio::select! {
            item = inbound.recv() => match item {
                Some(item) => item,
                None => return,
            },
            _ = retry.tick(), if needs_sync || !stale.is_empty() => {
                if needs_sync {
                    needs_sync = !catch_up(&core, &mut resumes).await;
                }
                retry_stale(&core, &mut stale).await;
                continue;
            }
        };
        match item {
            Inbound::Linked => {
                resumes.clear();
                if syncs(&core) {
                    needs_sync = !catch_up(&core, &mut resumes).await;
                } else {
                    core.set_state(ConnectionState::Connected);
                }
            }
            Inbound::State(new_state) => core.set_state(new_state),
            Inbound::Sent { message, key_id } => {
                if !syncs(&core) {
                    continue;
                }
                let chat_id = message.chat_id;
                if let Err(e) = on_sent(&core, *message, key_id).await {
                    tracing::debug!(error = %e, chat = %chat_id, "own message not stored yet");
                    stale.insert(chat_id);
                }
            }
            Inbound::Frame(frame) => match *frame {
                ServerFrame::Event { event } => {
                    if !syncs(&core) {
                        continue;
                    }
                    let (chat_id, seq) = (event.chat_id, event.seq);
                    let from_others = event.sender != core.me;
                    match on_event(&core, event).await {
                        Ok(()) if from_others => deliveries.note(chat_id, seq),
                        Ok(()) => {}
                        Err(e) => {
                            tracing::debug!(error = %e, chat = %chat_id, "event not processed yet");
                            stale.insert(chat_id);
                        }
                    }
                }
                ServerFrame::Live { event } => on_live(&core, event).await,
                ServerFrame::Resumed { .. } => match resumes.pop_front() {
                    Some(next) => {
                        if !send_resume(&core, next) {
                            // The connection is gone: `Linked` starts over.
                            resumes.clear();
                        }
                    }
                    None => core.set_state(ConnectionState::Connected),
                },
                ServerFrame::Error { error } => {
                    tracing::debug!(code = %error.code, "error frame from the server");
                }
                _ => {}
            },
        }
        deliveries.flush_if_due(&core, inbound.is_empty());
    }
}

fn syncs(core: &Core) -> bool {
    core.options.sync && core.store.is_some()
}

/// Starts catching up on the current connection; false if it must be retried.
/// The `resume` frames after the first wait in `resumes`.
async fn catch_up(core: &Core, resumes: &mut VecDeque<Vec<ResumePosition>>) -> bool {
    let positions = match sync_on_link(core).await {
        Ok(positions) => positions,
        Err(e) => {
            tracing::warn!(error = %e, "could not start catching up; retrying");
            return false;
        }
    };
    resumes.clear();
    resumes.extend(
        positions
            .chunks(RESUME_CHATS_PER_FRAME)
            .map(<[ResumePosition]>::to_vec),
    );
    let Some(first) = resumes.pop_front() else {
        core.set_state(ConnectionState::Connected);
        return true;
    };
    if send_resume(core, first) {
        return true;
    }
    resumes.clear();
    tracing::warn!("could not send resume: connection lost; retrying");
    false
}

/// Sends one `resume` frame; false if the connection is gone.
fn send_resume(core: &Core, positions: Vec<ResumePosition>) -> bool {
    core.link.send_frame(&ClientFrame::Resume { positions })
}

/// Lists the chats (every page), updates which are active, and answers
/// where to resume those with something new.
async fn sync_on_link(core: &Core) -> Result<Vec<ResumePosition>> {
    let chats = core.list_all_chats().await?;
    let store = core.store()?;
    let positions = store.run(|conn| store::positions(conn)).await?;
    let synced_before = store
        .run(|conn| store::meta(conn, SYNCED_ONCE))
        .await?
        .is_some();
    let mut resume = Vec::new();
    for chat in &chats {
        let known = positions.iter().find(|p| p.chat_id == chat.id);
        if !known.is_some_and(|p| p.active) {
            let chat_id = chat.id;
            store
                .run(move |conn| store::set_active(conn, chat_id, true))
                .await?;
            if synced_before {
                core.emit(ClientEvent::ChatJoined(Box::new(chat.clone())));
            }
        }
        let have = known.map_or(Seq::ZERO, |p| p.last_seq);
        if chat.last_seq > have {
            resume.push(ResumePosition {
                chat_id: chat.id,
                seq: have,
            });
        }
    }
    let listed: BTreeSet<ChatId> = chats.iter().map(|c| c.id).collect();
    for gone in positions
        .iter()
        .filter(|p| p.active && !listed.contains(&p.chat_id))
    {
        let chat_id = gone.chat_id;
        store
            .run(move |conn| store::set_active(conn, chat_id, false))
            .await?;
        core.emit(ClientEvent::ChatRemoved { chat_id });
    }
    store
        .run(|conn| store::set_meta(conn, SYNCED_ONCE, "1"))
        .await?;
    Ok(resume)
}

/// One event from the socket: dropped if already processed; a gap before it
/// is filled from history first.
async fn on_event(core: &Core, event: ChatEvent) -> Result<()> {
    let chat_id = event.chat_id;
    let store = core.store()?;
    let last = store
        .run(move |conn| store::last_seq(conn, chat_id))
        .await?;
    if event.seq <= last {
        return Ok(());
    }
    if event.seq > last.next() {
        fill_gap(core, chat_id, last, Some(event.seq)).await?;
        let last = store
            .run(move |conn| store::last_seq(conn, chat_id))
            .await?;
        if event.seq <= last {
            return Ok(());
        }
    }
    apply(core, event).await
}

/// My own acknowledged message: the server does not push its event back to
/// the connection that sent it, so it is stored (and reported) from what was
/// sent, with the seq and time of the ack, exactly once and in seq order like
/// a received event: dropped if already there, a gap before it filled first.
/// If this fails, the chat is caught up from history instead.
async fn on_sent(core: &Core, message: Message, key_id: Vec<u8>) -> Result<()> {
    let chat_id = message.chat_id;
    let seq = message.seq;
    let store = core.store()?;
    let last = store
        .run(move |conn| store::last_seq(conn, chat_id))
        .await?;
    if seq <= last {
        return Ok(());
    }
    if seq > last.next() {
        fill_gap(core, chat_id, last, Some(seq)).await?;
        let last = store
            .run(move |conn| store::last_seq(conn, chat_id))
            .await?;
        if seq <= last {
            return Ok(());
        }
    }
    let me = core.me;
    let entry = ChatEntry::Message(message.clone());
    store
        .run(move |conn| {
            let tx = conn.transaction()?;
            store_entry(&tx, &entry, me, &key_id)?;
            store::advance(&tx, chat_id, seq)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    core.emit(ClientEvent::MessageReceived(message));
    Ok(())
}

/// Reads and processes the chat's events after `after` (and before `until`).
async fn fill_gap(core: &Core, chat_id: ChatId, mut after: Seq, until: Option<Seq>) -> Result<()> {
    loop {
        let request = HistoryRequest {
            chat_id,
            before_seq: until,
            after_seq: Some(after),
            limit: Some(MAX_HISTORY_PAGE),
        };
        let page: HistoryPage = match core.call::<commands::GetHistory>(&request, true).await {
            Ok(page) => page,
            // No longer a member: there is nothing more to read.
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::NotAMember | ErrorCode::ChatNotFound)
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        let Some(newest) = page.events.last().map(|e| e.seq) else {
            return Ok(());
        };
        for event in page.events {
            let seq = event.seq;
            let last = core
                .store()?
                .run(move |conn| store::last_seq(conn, chat_id))
                .await?;
            if seq > last {
                apply(core, event).await?;
            }
        }
        if !page.more || newest <= after {
            return Ok(());
        }
        after = newest;
    }
}

/// Catches up chats whose processing failed earlier, up to their current end.
async fn retry_stale(core: &Core, stale: &mut BTreeSet<ChatId>) {
    let chats: Vec<ChatId> = stale.iter().copied().collect();
    for chat_id in chats {
        let Ok(store) = core.store() else { return };
        let Ok(last) = store.run(move |conn| store::last_seq(conn, chat_id)).await else {
            continue;
        };
        if fill_gap(core, chat_id, last, None).await.is_ok() {
            stale.remove(&chat_id);
        }
    }
}

/// Decodes, stores and reports one event that continues its chat.
async fn apply(core: &Core, event: ChatEvent) -> Result<()> {
    let chat_id = event.chat_id;
    let seq = event.seq;
    let entry = decode(core, event.clone()).await?;
    let me = core.me;
    let key_id = match &event.body {
        EventBody::Message { envelope, .. } | EventBody::Edit { envelope, .. } => {
            envelope.sender_key.0.clone()
        }
        _ => Vec::new(),
    };
    let stored = entry.clone();
    core.store()?
        .run(move |conn| {
            let tx = conn.transaction()?;
            store_entry(&tx, &stored, me, &key_id)?;
            store::advance(&tx, chat_id, seq)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    core.emit(match entry {
        ChatEntry::Message(m) => ClientEvent::MessageReceived(m),
        ChatEntry::Edited(e) => ClientEvent::MessageEdited(e),
        ChatEntry::Deleted(d) => ClientEvent::MessageDeleted(d),
        ChatEntry::Changed(c) => ClientEvent::ChatChanged(c),
    });
    Ok(())
}

/// Writes one decoded entry.
fn store_entry(
    conn: &rusqlite::Connection,
    entry: &ChatEntry,
    me: UserId,
    key_id: &[u8],
) -> Result<(), StoreError> {
    match entry {
        ChatEntry::Message(m) => {
            store::record_envelope_id(conn, m.chat_id, m.sender, &m.client_msg_id, m.seq)?;
            store::insert_message(conn, m, key_id)?;
        }
        ChatEntry::Edited(e) => {
            store::apply_edit(conn, e, key_id)?;
        }
        ChatEntry::Deleted(d) => {
            store::apply_delete(conn, d)?;
        }
        ChatEntry::Changed(c) => match &c.change {
            ChatChangeKind::MemberRemoved { user_id } | ChatChangeKind::MemberLeft { user_id }
                if *user_id == me =>
            {
                store::set_active(conn, c.chat_id, false)?;
            }
            ChatChangeKind::Created { members, .. } if members.contains(&me) => {
                store::set_active(conn, c.chat_id, true)?;
            }
            ChatChangeKind::MembersAdded { user_ids } if user_ids.contains(&me) => {
                store::set_active(conn, c.chat_id, true)?;
            }
            _ => {}
        },
    }
    Ok(())
}

/// Verifies and decrypts one log event (for the stream and for history).
/// Refusals become [`Verification::Invalid`]; only passing failures (no
/// answer while fetching keys) are errors.
pub(crate) async fn decode(core: &Core, event: ChatEvent) -> Result<ChatEntry> {
    let ChatEvent {
        chat_id,
        seq,
        sender,
        at,
        body,
    } = event;
    let change = |change| {
        Ok(ChatEntry::Changed(ChatChange {
            chat_id,
            seq,
            sender,
            at,
            change,
        }))
    };
    match body {
        EventBody::Message {
            client_msg_id,
            envelope,
        } => {
            let (payload, mut verification) = open(core, chat_id, sender, &envelope).await?;
            if envelope.header.client_msg_id != client_msg_id {
                verification = Verification::Invalid {
                    reason: "the envelope carries another message id than its event".into(),
                };
            } else if let Some(reason) = replay(core, chat_id, sender, &client_msg_id, seq).await? {
                verification = Verification::Invalid { reason };
            }
            let payload = payload.filter(|_| !matches!(verification, Verification::Invalid { .. }));
            Ok(ChatEntry::Message(Message {
                chat_id,
                seq,
                sender,
                client_msg_id,
                sent_at: envelope.header.sent_at,
                at,
                payload,
                verification,
                edited_seq: None,
                deleted: false,
            }))
        }
        EventBody::Edit {
            target_seq,
            envelope,
        } => {
            let (payload, mut verification) = open(core, chat_id, sender, &envelope).await?;
            let id = envelope.header.client_msg_id.clone();
            if let Some(reason) = replay(core, chat_id, sender, &id, seq).await? {
                verification = Verification::Invalid { reason };
            }
            if let Some(target) = stored_message(core, chat_id, target_seq).await? {
                if target.sender != sender {
                    verification = Verification::Invalid {
                        reason: "an edit of another member's message".into(),
                    };
                }
            }
            if !matches!(verification, Verification::Invalid { .. }) {
                if let Some(store) = &core.store {
                    store
                        .run(move |conn| store::record_envelope_id(conn, chat_id, sender, &id, seq))
                        .await?;
                }
            }
            let payload = payload.filter(|_| !matches!(verification, Verification::Invalid { .. }));
            Ok(ChatEntry::Edited(MessageEdit {
                chat_id,
                seq,
                target_seq,
                sender,
                at,
                payload,
                verification,
            }))
        }
        EventBody::Delete { target_seq } => Ok(ChatEntry::Deleted(MessageDeletion {
            chat_id,
            seq,
            target_seq,
            sender,
            at,
        })),
        EventBody::Created { title, members } => change(ChatChangeKind::Created { title, members }),
        EventBody::MembersAdded { user_ids } => change(ChatChangeKind::MembersAdded { user_ids }),
        EventBody::MemberRemoved { user_id } => change(ChatChangeKind::MemberRemoved { user_id }),
        EventBody::MemberLeft { user_id } => change(ChatChangeKind::MemberLeft { user_id }),
        EventBody::Renamed { title } => change(ChatChangeKind::Renamed { title }),
        EventBody::RoleChanged { user_id, role } => {
            change(ChatChangeKind::RoleChanged { user_id, role })
        }
    }
}

/// A replayed envelope: its (chat, sender, id) was seen at another seq.
async fn replay(
    core: &Core,
    chat_id: ChatId,
    sender: UserId,
    client_msg_id: &str,
    seq: Seq,
) -> Result<Option<String>> {
    let Some(store) = &core.store else {
        return Ok(None);
    };
    let id = client_msg_id.to_owned();
    let seen = store
        .run(move |conn| store::envelope_seq(conn, chat_id, sender, &id))
        .await?;
    Ok(seen
        .filter(|first| *first != seq)
        .map(|first| format!("a replay of the envelope first seen at seq {first}")))
}

async fn stored_message(core: &Core, chat_id: ChatId, seq: Seq) -> Result<Option<Message>> {
    match &core.store {
        Some(store) => store
            .run(move |conn| store::message(conn, chat_id, seq))
            .await
            .map_err(MessengerError::from),
        None => Ok(None),
    }
}

/// Checks an envelope's origin and signer, then decrypts it.
async fn open(
    core: &Core,
    chat_id: ChatId,
    sender: UserId,
    envelope: &Envelope,
) -> Result<(Option<MessagePayload>, Verification)> {
    let invalid = |reason: String| Ok((None, Verification::Invalid { reason }));
    if verify_origin(envelope, chat_id, sender).is_err() {
        return invalid(format!(
            "forged: the envelope names another chat or sender than user {sender} in this chat"
        ));
    }
    let (keys, verification) =
        match sender_keys(core, sender, envelope.sender_key.as_slice()).await? {
            SenderKeys::Own(keys) => (keys, Verification::Own),
            SenderKeys::Pinned { keys, verified } => (
                keys,
                if verified {
                    Verification::Verified
                } else {
                    Verification::Trusted
                },
            ),
            SenderKeys::Changed(keys) => {
                let fingerprint = super::fingerprint(&keys);
                (keys, Verification::KeyChanged { fingerprint })
            }
            SenderKeys::Unknown(reason) => return invalid(reason),
        };
    let identity = core.identity()?;
    let me = core.me;
    let envelope = envelope.clone();
    let opened = tokio::task::spawn_blocking(move || open_payload(&envelope, me, &identity, &keys))
        .await
        .map_err(|source| KeyError::Interrupted {
            work: "decryption",
            source,
        })?;
    match opened {
        Ok(payload) => Ok((Some(payload), verification)),
        Err(e) => invalid(e.to_string()),
    }
}

async fn on_live(core: &Core, event: LiveEvent) {
    let reported = match event {
        LiveEvent::Typing { chat_id, user_id } => ClientEvent::Typing { chat_id, user_id },
        LiveEvent::ReadReceipt {
            chat_id,
            user_id,
            seq,
        } => ClientEvent::ReadReceipt {
            chat_id,
            user_id,
            seq,
        },
        LiveEvent::DeliveryReceipt {
            chat_id,
            user_id,
            seq,
        } => ClientEvent::DeliveryReceipt {
            chat_id,
            user_id,
            seq,
        },
        LiveEvent::ProfileChanged { user } => ClientEvent::ProfileChanged(user),
        LiveEvent::Presence {
            user_id,
            online,
            last_seen_at,
        } => ClientEvent::Presence {
            user_id,
            online,
            last_seen_at,
        },
        LiveEvent::ChatJoined { chat } => {
            if let Some(store) = &core.store {
                let chat_id = chat.id;
                if let Err(e) = store
                    .run(move |conn| store::set_active(conn, chat_id, true))
                    .await
                {
                    tracing::warn!(error = %e, "cannot record a joined chat");
                }
            }
            ClientEvent::ChatJoined(chat)
        }
        LiveEvent::ChatRemoved { chat_id } => {
            if let Some(store) = &core.store {
                if let Err(e) = store
                    .run(move |conn| store::set_active(conn, chat_id, false))
                    .await
                {
                    tracing::warn!(error = %e, "cannot record a removed chat");
                }
            }
            ClientEvent::ChatRemoved { chat_id }
        }
        LiveEvent::Invited { invitation } => ClientEvent::Invited(invitation),
        LiveEvent::InvitationClosed { chat_id } => ClientEvent::InvitationClosed { chat_id },
    };
    core.emit(reported);
}
