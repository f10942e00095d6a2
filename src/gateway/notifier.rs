//! [`HubHandle`]: the handlers' way into the gateway (it implements their
//! `Notifier`), a cheap clonable handle whose methods never block: they
//! `do_send` to the hub.

use crate::gateway::hub::Hub;
use crate::gateway::messages::{
    ChatEventCommitted, ChatEventsCommitted, CloseAllSockets, CloseSessionSockets,
    CloseUserSockets, ConnId, LiveEventRaised,
};
use crate::gateway::presence::PresenceBoard;
use crate::gateway::transport::frame::CloseCause;
use actix::Addr;
use ferrogram_core::ids::{SessionId, UserId};
use ferrogram_core::proto::chat::{LiveEvent, PresenceInfo};
use ferrogram_handlers::notify::CommittedEvent;
use ferrogram_handlers::Notifier;
use std::sync::Arc;

/// The handlers' way into the gateway (the `Notifier`). Sync and
/// non-blocking: every method is one `do_send` or one short lock.
#[derive(Clone)]
pub struct HubHandle {
    hub: Addr<Hub>,
    presence: Arc<PresenceBoard>,
}

impl HubHandle {
    pub fn new(hub: Addr<Hub>, presence: Arc<PresenceBoard>) -> Self {
        Self { hub, presence }
    }

    pub fn hub(&self) -> &Addr<Hub> {
        &self.hub
    }

    /// An unstored event, to every online session of `users`.
    pub fn live_event(&self, users: &[UserId], event: &LiveEvent) {
        self.hub.do_send(LiveEventRaised {
            users: users.to_vec(),
            event: event.clone(),
        });
    }

    /// Closes the connections of a revoked or logged-out session now.
    pub fn session_closed(&self, session: &SessionId) {
        self.hub.do_send(CloseSessionSockets {
            session_id: session.clone(),
            cause: CloseCause::ConnectionEnded,
        });
    }

    /// Closes every connection of a user now (account deleted).
    pub fn user_closed(&self, user: UserId) {
        self.hub.do_send(CloseUserSockets {
            user,
            cause: CloseCause::AccountDeleted,
        });
    }

    pub fn presence(&self, user: UserId) -> PresenceInfo {
        self.presence.info(user)
    }

    /// Closes every connection (the server is shutting down).
    pub fn close_all(&self) {
        self.hub.do_send(CloseAllSockets {
            cause: CloseCause::ServerShutdown,
        });
    }
}

impl Notifier for HubHandle {
    fn chat_events(&self, events: Vec<CommittedEvent>) {
        self.hub.do_send(ChatEventsCommitted(
            events
                .into_iter()
                .map(|e| ChatEventCommitted {
                    members: e.members,
                    event: e.event,
                    origin: e.origin.map(|o| ConnId(o.0)),
                })
                .collect(),
        ));
    }

    fn live_event(&self, users: &[UserId], event: &LiveEvent) {
        HubHandle::live_event(self, users, event);
    }

    fn session_closed(&self, session: &SessionId) {
        HubHandle::session_closed(self, session);
    }

    fn user_closed(&self, user: UserId) {
        HubHandle::user_closed(self, user);
    }

    fn presence(&self, user: UserId) -> PresenceInfo {
        HubHandle::presence(self, user)
    }
}
