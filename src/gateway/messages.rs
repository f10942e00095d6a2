//! The messages between the gateway's actors, one struct each. Commands are
//! named imperatively, events in the past tense. All are sent with `do_send`
//! (fan-out never waits for an answer).

use crate::gateway::transport::frame::CloseCause;
use actix::prelude::*;
use bytestring::ByteString;
use ferrogram_core::ids::{ChatId, Seq, SessionId, UserId};
use ferrogram_core::proto::chat::{ChatEvent, LiveEvent};

/// Identifies one WebSocket connection for the lifetime of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    /// A fresh, never reused id.
    pub fn next() -> ConnId {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

// ---- to the hub ----

/// How the hub and the rooms reach one connection's actor.
#[derive(Clone)]
pub struct ConnectionLink {
    pub events: Recipient<DeliverEvent>,
    pub live: Recipient<DeliverLive>,
    pub close: Recipient<CloseConnection>,
}

impl ConnectionLink {
    /// The link to an actor that takes all three messages.
    pub fn of<A>(addr: &Addr<A>) -> Self
    where
        A: Actor + Handler<DeliverEvent> + Handler<DeliverLive> + Handler<CloseConnection>,
        A::Context: actix::dev::ToEnvelope<A, DeliverEvent>
            + actix::dev::ToEnvelope<A, DeliverLive>
            + actix::dev::ToEnvelope<A, CloseConnection>,
    {
        Self {
            events: addr.clone().recipient(),
            live: addr.clone().recipient(),
            close: addr.clone().recipient(),
        }
    }
}

/// Connection -> hub: the connection authenticated; route the user's events to it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterConnection {
    pub conn: ConnId,
    pub user: UserId,
    pub session_id: SessionId,
    pub link: ConnectionLink,
}

/// Connection -> hub: the connection ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConnectionEnded {
    pub conn: ConnId,
}

/// Notifier -> hub: an event was committed; fan it out to these members.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChatEventCommitted {
    pub members: Vec<UserId>,
    pub event: ChatEvent,
    /// The connection whose command stored the event: it is not sent the
    /// event (its reply carries the seq).
    pub origin: Option<ConnId>,
}

/// Notifier -> hub: the events of one writer batch, in commit order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChatEventsCommitted(pub Vec<ChatEventCommitted>);

/// Notifier -> hub: an unstored event for the online sessions of these users.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LiveEventRaised {
    pub users: Vec<UserId>,
    pub event: LiveEvent,
}

/// Notifier -> hub: close every connection of a login session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseSessionSockets {
    pub session_id: SessionId,
    pub cause: CloseCause,
}

/// Notifier -> hub: close every connection of a user.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseUserSockets {
    pub user: UserId,
    pub cause: CloseCause,
}

/// Server -> hub: close every connection (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAllSockets {
    pub cause: CloseCause,
}

/// Test and metrics probe: how many connections and rooms the hub tracks.
#[derive(Message)]
#[rtype(result = "HubStats")]
pub struct GetHubStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, MessageResponse)]
pub struct HubStats {
    pub connections: usize,
    pub users_online: usize,
    pub rooms: usize,
}

// ---- to a chat room ----

/// Hub -> room: deliver one committed event to these connections (each with
/// its user), in seq order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PublishEvent {
    pub event: ChatEvent,
    pub targets: Vec<(UserId, Recipient<DeliverEvent>)>,
}

/// Hub -> room: the room is idle; stop (after the events already sent to it).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopRoom;

// ---- to a connection ----

/// Room -> connection: one committed event, serialized (once for all
/// recipients, or with only the recipient's key wrap: `gateway::event_frames`).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct DeliverEvent {
    pub chat_id: ChatId,
    pub seq: Seq,
    pub frame: ByteString,
}

/// Hub -> connection: one live (unstored) event, serialized.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct DeliverLive {
    pub frame: ByteString,
}

/// Hub -> connection: close the connection now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseConnection {
    pub cause: CloseCause,
}
