//! `Hub`: the registry actor. It maps users to their authenticated
//! connections and chats to their `ChatRoom`s, routes committed events to the
//! room of their chat with the sessions of the members online right now,
//! sends live events to users' sessions, closes connections on request, and
//! keeps presence.

use crate::actors::messages::{
    ChatEventCommitted, CloseAllSockets, CloseConnection, CloseSessionSockets, CloseUserSockets,
    ConnId, DeliverLive, GetHubStats, HubStats, LiveEventRaised, PublishEvent, RegisterSession,
    RoomAddr, SessionEnded, StopRoom,
};
use crate::actors::presence::{co_members, PresenceBoard};
use crate::actors::room::ChatRoom;
use crate::actors::session::Session;
use crate::ws::frame::{encode, CloseCause};
use actix::prelude::*;
use ferrogram_core::ids::{now_millis, ChatId, SessionId, UserId};
use ferrogram_core::proto::chat::LiveEvent;
use ferrogram_core::proto::ws::ServerFrame;
use ferrogram_storage::{Storage, StorageError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Conn {
    user: UserId,
    session_id: SessionId,
    addr: Addr<Session>,
}

struct Room {
    addr: RoomAddr,
    last_event: Instant,
}

pub struct Hub {
    conns: HashMap<ConnId, Conn>,
    by_user: HashMap<UserId, Vec<ConnId>>,
    rooms: HashMap<ChatId, Room>,
    presence: Arc<PresenceBoard>,
    /// `None` in tests without a database: presence is then not broadcast.
    storage: Option<Storage>,
    room_idle: Duration,
}

impl Hub {
    pub fn new(
        storage: Option<Storage>,
        presence: Arc<PresenceBoard>,
        room_idle: Duration,
    ) -> Self {
        Self {
            conns: HashMap::new(),
            by_user: HashMap::new(),
            rooms: HashMap::new(),
            presence,
            storage,
            room_idle,
        }
    }

    fn sessions_of(&self, user: UserId) -> impl Iterator<Item = &Conn> + '_ {
        self.by_user
            .get(&user)
            .into_iter()
            .flatten()
            .filter_map(|conn| self.conns.get(conn))
    }

    fn close_where(&self, cause: CloseCause, matches: impl Fn(&Conn) -> bool) -> usize {
        let mut closed = 0;
        for conn in self.conns.values().filter(|c| matches(c)) {
            conn.addr.do_send(CloseConnection { cause });
            closed += 1;
        }
        closed
    }

    fn send_live(&self, users: &[UserId], event: &LiveEvent) {
        let mut frame = None;
        for user in users {
            for conn in self.sessions_of(*user) {
                let frame = frame
                    .get_or_insert_with(|| {
                        encode(&ServerFrame::Live {
                            event: event.clone(),
                        })
                    })
                    .clone();
                conn.addr.do_send(DeliverLive { frame });
            }
        }
    }

    /// Tells everyone who shares a chat with `user` (and is online) about
    /// `user`'s presence. The state sent is the one current when the query
    /// returns, so quick reconnects never leave a stale "offline" behind.
    fn announce_presence(&self, user: UserId, ctx: &mut Context<Self>) {
        let Some(storage) = self.storage.clone() else {
            return;
        };
        let query = async move {
            storage
                .run(move |conn| -> Result<_, StorageError> { co_members(conn, user) })
                .await
        };
        ctx.spawn(
            query
                .into_actor(self)
                .map(move |result, hub, _| match result {
                    Ok(users) => {
                        let online: Vec<UserId> = users
                            .into_iter()
                            .filter(|u| hub.by_user.contains_key(u))
                            .collect();
                        if online.is_empty() {
                            return;
                        }
                        let info = hub.presence.info(user);
                        hub.send_live(
                            &online,
                            &LiveEvent::Presence {
                                user_id: user,
                                online: info.online,
                                last_seen_at: info.last_seen_at,
                            },
                        );
                    }
                    Err(e) => tracing::warn!(error = %e, "presence: cannot list co-members"),
                }),
        );
    }

    fn sweep_rooms(&mut self) {
        let idle = self.room_idle;
        self.rooms.retain(|_, room| {
            let keep = room.last_event.elapsed() < idle;
            if !keep {
                // Events already sent to the room are handled before this.
                room.addr.do_send(StopRoom);
            }
            keep
        });
    }
}

impl Actor for Hub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = (self.room_idle / 2).max(Duration::from_millis(100));
        ctx.run_interval(every, |hub, _| hub.sweep_rooms());
    }
}

impl Handler<RegisterSession> for Hub {
    type Result = ();

    fn handle(&mut self, msg: RegisterSession, ctx: &mut Self::Context) {
        let RegisterSession {
            conn,
            user,
            session_id,
            addr,
        } = msg;
        self.conns.insert(
            conn,
            Conn {
                user,
                session_id,
                addr,
            },
        );
        self.by_user.entry(user).or_default().push(conn);
        if self.presence.connected(user) {
            self.announce_presence(user, ctx);
        }
    }
}

impl Handler<SessionEnded> for Hub {
    type Result = ();

    fn handle(&mut self, msg: SessionEnded, ctx: &mut Self::Context) {
        let Some(conn) = self.conns.remove(&msg.conn) else {
            return;
        };
        if let Some(list) = self.by_user.get_mut(&conn.user) {
            list.retain(|c| *c != msg.conn);
            if list.is_empty() {
                self.by_user.remove(&conn.user);
            }
        }
        if self.presence.disconnected(conn.user, now_millis()) {
            self.announce_presence(conn.user, ctx);
        }
    }
}

impl Handler<ChatEventCommitted> for Hub {
    type Result = ();

    fn handle(&mut self, msg: ChatEventCommitted, _ctx: &mut Self::Context) {
        let ChatEventCommitted { members, event } = msg;
        let targets: Vec<Addr<Session>> = members
            .iter()
            .flat_map(|user| self.sessions_of(*user))
            .map(|conn| conn.addr.clone())
            .collect();
        let chat_id = event.chat_id;
        if targets.is_empty() && !self.rooms.contains_key(&chat_id) {
            // Nobody to tell and no room keeping order: nothing to do.
            return;
        }
        let room = self.rooms.entry(chat_id).or_insert_with(|| Room {
            addr: ChatRoom::new(chat_id).start(),
            last_event: Instant::now(),
        });
        room.last_event = Instant::now();
        room.addr.do_send(PublishEvent { event, targets });
    }
}

impl Handler<LiveEventRaised> for Hub {
    type Result = ();

    fn handle(&mut self, msg: LiveEventRaised, _ctx: &mut Self::Context) {
        self.send_live(&msg.users, &msg.event);
    }
}

impl Handler<CloseSessionSockets> for Hub {
    type Result = ();

    fn handle(&mut self, msg: CloseSessionSockets, _ctx: &mut Self::Context) {
        let closed = self.close_where(msg.cause, |c| c.session_id == msg.session_id);
        if closed > 0 {
            tracing::debug!(
                connections = closed,
                cause = msg.cause.kind(),
                "closing a session's sockets"
            );
        }
    }
}

impl Handler<CloseUserSockets> for Hub {
    type Result = ();

    fn handle(&mut self, msg: CloseUserSockets, _ctx: &mut Self::Context) {
        let closed = self.close_where(msg.cause, |c| c.user == msg.user);
        if closed > 0 {
            tracing::debug!(user_id = %msg.user, connections = closed, cause = msg.cause.kind(), "closing a user's sockets");
        }
    }
}

impl Handler<CloseAllSockets> for Hub {
    type Result = ();

    fn handle(&mut self, msg: CloseAllSockets, _ctx: &mut Self::Context) {
        self.close_where(msg.cause, |_| true);
    }
}

impl Handler<GetHubStats> for Hub {
    type Result = HubStats;

    fn handle(&mut self, _: GetHubStats, _ctx: &mut Self::Context) -> HubStats {
        HubStats {
            connections: self.conns.len(),
            users_online: self.by_user.len(),
            rooms: self.rooms.len(),
        }
    }
}
