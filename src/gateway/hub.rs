//! `Hub`: the registry actor. It maps users to their authenticated
//! connections and chats to their `ChatRoom`s, routes committed events to the
//! room of their chat with the sessions of the members online right now,
//! sends live events to users' sessions, closes connections on request, and
//! keeps presence.

use crate::gateway::messages::{
    ChatEventCommitted, ChatEventsCommitted, CloseAllSockets, CloseConnection, CloseSessionSockets,
    CloseUserSockets, ConnId, ConnectionEnded, ConnectionLink, DeliverEvent, DeliverLive,
    GetHubStats, HubStats, LiveEventRaised, PublishEvent, RegisterConnection, StopRoom,
};
use crate::gateway::presence::PresenceBoard;
use crate::gateway::room::ChatRoom;
use crate::gateway::transport::frame::{encode, CloseCause};
use actix::prelude::*;
use ferrogram_core::ids::{ChatId, SessionId, Timestamp, UserId};
use ferrogram_core::proto::chat::LiveEvent;
use ferrogram_core::proto::ws::ServerFrame;
use ferrogram_storage::{chats, Storage, StorageError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Conn {
    user: UserId,
    session_id: SessionId,
    link: ConnectionLink,
}

struct Room {
    addr: Addr<ChatRoom>,
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
            conn.link.close.do_send(CloseConnection { cause });
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
                conn.link.live.do_send(DeliverLive { frame });
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
                .run(move |conn| -> Result<_, StorageError> { chats::co_members(conn, user) })
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

impl Handler<RegisterConnection> for Hub {
    type Result = ();

    fn handle(&mut self, msg: RegisterConnection, ctx: &mut Self::Context) {
        let RegisterConnection {
            conn,
            user,
            session_id,
            link,
        } = msg;
        self.conns.insert(
            conn,
            Conn {
                user,
                session_id,
                link,
            },
        );
        self.by_user.entry(user).or_default().push(conn);
        if self.presence.connected(user) {
            self.announce_presence(user, ctx);
        }
    }
}

impl Handler<ConnectionEnded> for Hub {
    type Result = ();

    fn handle(&mut self, msg: ConnectionEnded, ctx: &mut Self::Context) {
        let Some(conn) = self.conns.remove(&msg.conn) else {
            return;
        };
        if let Some(list) = self.by_user.get_mut(&conn.user) {
            list.retain(|c| *c != msg.conn);
            if list.is_empty() {
                self.by_user.remove(&conn.user);
            }
        }
        if self.presence.disconnected(conn.user, Timestamp::now()) {
            self.announce_presence(conn.user, ctx);
        }
    }
}

impl Handler<ChatEventsCommitted> for Hub {
    type Result = ();

    fn handle(&mut self, msg: ChatEventsCommitted, _ctx: &mut Self::Context) {
        for event in msg.0 {
            self.publish(event);
        }
    }
}

impl Handler<ChatEventCommitted> for Hub {
    type Result = ();

    fn handle(&mut self, msg: ChatEventCommitted, _ctx: &mut Self::Context) {
        self.publish(msg);
    }
}

impl Hub {
    /// Hands a committed event to its chat's room (started if needed) with
    /// the sessions to reach.
    fn publish(&mut self, msg: ChatEventCommitted) {
        let ChatEventCommitted {
            members,
            event,
            origin,
        } = msg;
        let targets: Vec<(UserId, Recipient<DeliverEvent>)> = members
            .iter()
            .flat_map(|user| self.by_user.get(user).into_iter().flatten())
            .filter(|conn| Some(**conn) != origin)
            .filter_map(|conn| self.conns.get(conn))
            .map(|conn| (conn.user, conn.link.events.clone()))
            .collect();
        let chat_id = event.chat_id;
        if targets.is_empty() {
            // Nobody online to tell.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::messages::{CloseConnection, DeliverEvent};
    use ferrogram_core::ids::Seq;
    use ferrogram_core::proto::chat::{ChatEvent, EventBody};
    use std::sync::Mutex;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Got {
        Event(ChatId, i64),
        Live(String),
        Closed(CloseCause),
    }

    /// Stands in for a connection actor: records what reaches it.
    struct Fake(Arc<Mutex<Vec<Got>>>);

    impl Actor for Fake {
        type Context = Context<Self>;
    }

    impl Handler<DeliverEvent> for Fake {
        type Result = ();
        fn handle(&mut self, msg: DeliverEvent, _: &mut Context<Self>) {
            assert!(msg.frame.contains("\"type\":\"event\""));
            self.0
                .lock()
                .unwrap()
                .push(Got::Event(msg.chat_id, msg.seq.get()));
        }
    }

    impl Handler<DeliverLive> for Fake {
        type Result = ();
        fn handle(&mut self, msg: DeliverLive, _: &mut Context<Self>) {
            self.0
                .lock()
                .unwrap()
                .push(Got::Live(msg.frame.to_string()));
        }
    }

    impl Handler<CloseConnection> for Fake {
        type Result = ();
        fn handle(&mut self, msg: CloseConnection, _: &mut Context<Self>) {
            self.0.lock().unwrap().push(Got::Closed(msg.cause));
        }
    }

    struct Setup {
        hub: Addr<Hub>,
        presence: Arc<PresenceBoard>,
    }

    fn setup(room_idle: Duration) -> Setup {
        let presence = Arc::new(PresenceBoard::default());
        let hub = Hub::new(None, presence.clone(), room_idle).start();
        Setup { hub, presence }
    }

    fn connect(s: &Setup, conn: u64, user: i64, session: &str) -> Arc<Mutex<Vec<Got>>> {
        let got = Arc::new(Mutex::new(Vec::new()));
        let fake = Fake(got.clone()).start();
        s.hub.do_send(RegisterConnection {
            conn: ConnId(conn),
            user: UserId(user),
            session_id: SessionId(session.to_owned()),
            link: ConnectionLink::of(&fake),
        });
        got
    }

    fn event(chat: i64, seq: i64) -> ChatEvent {
        ChatEvent {
            chat_id: ChatId(chat),
            seq: Seq::new(seq),
            sender: UserId(1),
            at: Timestamp::EPOCH,
            body: EventBody::Renamed {
                title: format!("t{seq}"),
            },
        }
    }

    fn commit(s: &Setup, members: &[i64], event: ChatEvent) {
        commit_from(s, members, event, None);
    }

    fn commit_from(s: &Setup, members: &[i64], event: ChatEvent, origin: Option<u64>) {
        s.hub.do_send(ChatEventCommitted {
            members: members.iter().copied().map(UserId).collect(),
            event,
            origin: origin.map(ConnId),
        });
    }

    /// Waits (briefly) until `check` holds.
    async fn eventually(what: &str, check: impl Fn() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never: {what}");
    }

    fn events(got: &Arc<Mutex<Vec<Got>>>) -> Vec<Got> {
        got.lock()
            .unwrap()
            .iter()
            .filter(|g| matches!(g, Got::Event(..)))
            .cloned()
            .collect()
    }

    #[actix_web::test]
    async fn events_reach_every_session_of_every_member_in_seq_order() {
        let s = setup(Duration::from_secs(60));
        let alice_laptop = connect(&s, 1, 1, "a1");
        let alice_phone = connect(&s, 2, 1, "a2");
        let bob = connect(&s, 3, 2, "b1");
        let outsider = connect(&s, 4, 3, "c1");
        for seq in 1..=50 {
            commit(&s, &[1, 2, 9], event(7, seq));
        }
        let expected: Vec<Got> = (1..=50).map(|seq| Got::Event(ChatId(7), seq)).collect();
        for got in [&alice_laptop, &alice_phone, &bob] {
            eventually("50 events", || events(got).len() == 50).await;
            assert_eq!(events(got), expected);
        }
        assert!(events(&outsider).is_empty());
        let stats = s.hub.send(GetHubStats).await.unwrap();
        assert_eq!(
            stats,
            HubStats {
                connections: 4,
                users_online: 3,
                rooms: 1
            }
        );
    }

    /// The way events really come: the event writer's batches, in commit
    /// order, through the `Notifier` the handlers see. They arrive in seq
    /// order with nothing held back or reordered on the way.
    #[actix_web::test]
    async fn batches_from_the_notifier_arrive_in_commit_order() {
        use crate::gateway::notifier::HubHandle;
        use ferrogram_core::ids::Origin;
        use ferrogram_handlers::notify::CommittedEvent;
        use ferrogram_handlers::Notifier;
        let s = setup(Duration::from_secs(60));
        let sender = connect(&s, 1, 1, "a1");
        let reader = connect(&s, 2, 2, "b1");
        let notifier = HubHandle::new(s.hub.clone(), s.presence.clone());
        let mut seq = 0;
        for _batch in 0..40 {
            let events = (0..5)
                .map(|_| {
                    seq += 1;
                    CommittedEvent {
                        members: vec![UserId(1), UserId(2)],
                        event: event(7, seq),
                        // the odd ones were sent on connection 1
                        origin: (seq % 2 == 1).then_some(Origin(1)),
                    }
                })
                .collect();
            notifier.chat_events(events);
        }
        let all: Vec<Got> = (1..=200).map(|seq| Got::Event(ChatId(7), seq)).collect();
        eventually("200 events", || events(&reader).len() == 200).await;
        assert_eq!(events(&reader), all);
        let even: Vec<Got> = (1..=100).map(|n| Got::Event(ChatId(7), 2 * n)).collect();
        eventually("the even ones", || events(&sender).len() == 100).await;
        assert_eq!(events(&sender), even, "not sent back to its connection");
    }

    #[actix_web::test]
    async fn an_event_skips_only_the_connection_it_came_from() {
        let s = setup(Duration::from_secs(60));
        let alice_laptop = connect(&s, 1, 1, "a1");
        let alice_phone = connect(&s, 2, 1, "a2");
        let bob = connect(&s, 3, 2, "b1");
        commit_from(&s, &[1, 2], event(7, 1), Some(1));
        commit(&s, &[1, 2], event(7, 2));
        for got in [&alice_phone, &bob] {
            eventually("both events", || events(got).len() == 2).await;
        }
        eventually("the second event", || events(&alice_laptop).len() == 1).await;
        assert_eq!(events(&alice_laptop), vec![Got::Event(ChatId(7), 2)]);
    }

    #[actix_web::test]
    async fn idle_rooms_stop_and_restart_on_the_next_event() {
        let s = setup(Duration::from_millis(200));
        let bob = connect(&s, 1, 2, "b1");
        commit(&s, &[2], event(5, 1));
        eventually("first event", || events(&bob).len() == 1).await;
        assert_eq!(s.hub.send(GetHubStats).await.unwrap().rooms, 1);
        actix_web::rt::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            s.hub.send(GetHubStats).await.unwrap().rooms,
            0,
            "stopped when idle"
        );
        commit(&s, &[2], event(5, 2));
        eventually("second event", || events(&bob).len() == 2).await;
        assert_eq!(s.hub.send(GetHubStats).await.unwrap().rooms, 1);
        // nobody online: no room is started for the event
        commit(&s, &[8], event(6, 1));
        assert_eq!(s.hub.send(GetHubStats).await.unwrap().rooms, 1);
    }

    #[actix_web::test]
    async fn closing_hits_exactly_the_named_session_or_user() {
        let s = setup(Duration::from_secs(60));
        let a1 = connect(&s, 1, 1, "a1");
        let a2 = connect(&s, 2, 1, "a2");
        let b1 = connect(&s, 3, 2, "b1");
        s.hub.do_send(CloseSessionSockets {
            session_id: SessionId("a1".into()),
            cause: CloseCause::ConnectionEnded,
        });
        eventually("a1 closed", || !a1.lock().unwrap().is_empty()).await;
        assert_eq!(
            *a1.lock().unwrap(),
            vec![Got::Closed(CloseCause::ConnectionEnded)]
        );
        s.hub.do_send(CloseUserSockets {
            user: UserId(1),
            cause: CloseCause::AccountDeleted,
        });
        eventually("a2 closed", || !a2.lock().unwrap().is_empty()).await;
        assert_eq!(
            *a2.lock().unwrap(),
            vec![Got::Closed(CloseCause::AccountDeleted)]
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        assert!(b1.lock().unwrap().is_empty());
        s.hub.do_send(CloseAllSockets {
            cause: CloseCause::ServerShutdown,
        });
        eventually("b1 closed", || !b1.lock().unwrap().is_empty()).await;
    }

    #[actix_web::test]
    async fn live_events_and_presence_follow_connections() {
        let s = setup(Duration::from_secs(60));
        let a1 = connect(&s, 1, 1, "a1");
        let _a2 = connect(&s, 2, 1, "a2");
        s.hub.do_send(LiveEventRaised {
            users: vec![UserId(1), UserId(5)],
            event: LiveEvent::Typing {
                chat_id: ChatId(3),
                user_id: UserId(5),
            },
        });
        eventually("typing", || !a1.lock().unwrap().is_empty()).await;
        let live = a1.lock().unwrap()[0].clone();
        assert!(
            matches!(&live, Got::Live(frame) if frame.contains("\"typing\"")),
            "{live:?}"
        );
        assert!(s.presence.info(UserId(1)).online);
        s.hub.do_send(ConnectionEnded { conn: ConnId(1) });
        s.hub.send(GetHubStats).await.unwrap();
        assert!(s.presence.info(UserId(1)).online, "one connection left");
        s.hub.do_send(ConnectionEnded { conn: ConnId(2) });
        let stats = s.hub.send(GetHubStats).await.unwrap();
        assert_eq!(stats.users_online, 0);
        let info = s.presence.info(UserId(1));
        assert!(!info.online);
        assert!(info.last_seen_at.is_some());
        // an unknown connection ending is harmless
        s.hub.do_send(ConnectionEnded { conn: ConnId(99) });
        assert_eq!(s.hub.send(GetHubStats).await.unwrap().connections, 0);
    }
}
