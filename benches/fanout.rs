//! Fan-out of one committed message to N online sessions through the
//! gateway's real actors: the `Hub` routes the event to the chat's
//! `ChatRoom`, which serializes it once and hands every session its frame
//! (only that member's key wrap spliced in, `gateway::event_frames`). The
//! sessions are stand-in actors that count what they receive (no sockets),
//! so this is the hub/room path itself: routing, one serialization, N
//! splices and N mailbox deliveries.

use actix::prelude::*;

/// The server binary's allocator (src/main.rs), so allocation costs are the server's.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrogram_core::b64::B64;
use ferrogram_core::ids::{ChatId, Seq, SessionId, Timestamp, UserId};
use ferrogram_core::proto::chat::{ChatEvent, EventBody};
use ferrogram_core::proto::{Envelope, EnvelopeHeader, KeyWrap, ENVELOPE_VERSION};
use ferrogram_server::gateway::hub::Hub;
use ferrogram_server::gateway::messages::{
    ChatEventCommitted, CloseConnection, ConnId, ConnectionLink, DeliverEvent, DeliverLive,
    RegisterConnection,
};
use ferrogram_server::gateway::presence::PresenceBoard;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Counts deliveries; wakes the benchmark when `target` is reached.
struct Counter {
    count: AtomicUsize,
    target: AtomicUsize,
    done: Notify,
}

struct FakeSession(Arc<Counter>);

impl Actor for FakeSession {
    type Context = Context<Self>;
}

impl Handler<DeliverEvent> for FakeSession {
    type Result = ();
    fn handle(&mut self, msg: DeliverEvent, _: &mut Context<Self>) {
        std::hint::black_box(&msg.frame);
        let n = self.0.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.0.target.load(Ordering::Relaxed) {
            self.0.done.notify_one();
        }
    }
}

impl Handler<DeliverLive> for FakeSession {
    type Result = ();
    fn handle(&mut self, _: DeliverLive, _: &mut Context<Self>) {}
}

impl Handler<CloseConnection> for FakeSession {
    type Result = ();
    fn handle(&mut self, _: CloseConnection, _: &mut Context<Self>) {}
}

/// A message in the current envelope version with a wrap for each of
/// `members`: each session gets a frame with only its own wrap.
fn message(chat: i64, seq: i64, members: usize) -> ChatEvent {
    ChatEvent {
        chat_id: ChatId(chat),
        seq: Seq::new(seq),
        sender: UserId(1),
        at: Timestamp::from_millis(1_700_000_000_000),
        body: EventBody::Message {
            client_msg_id: format!("bench-{seq}"),
            envelope: Envelope {
                version: ENVELOPE_VERSION,
                header: EnvelopeHeader {
                    chat_id: ChatId(chat),
                    sender: UserId(1),
                    client_msg_id: format!("bench-{seq}"),
                    sent_at: Timestamp::EPOCH,
                },
                sender_key: B64(vec![7; 32]),
                nonce: B64(vec![1; 12]),
                body: B64(vec![2; 1104]),
                wraps: (1..=members as i64)
                    .map(|user| KeyWrap {
                        user_id: UserId(user),
                        key_id: B64(vec![3; 32]),
                        wrapped_key: B64(vec![4; 384]),
                    })
                    .collect(),
                signature: B64(vec![5; 384]),
                wrap_proof: None,
            },
        },
    }
}

fn bench(c: &mut Criterion) {
    let system = actix::System::new();
    let mut group = c.benchmark_group("fanout");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for sessions in [10usize, 100, 1000] {
        let counter = Arc::new(Counter {
            count: AtomicUsize::new(0),
            target: AtomicUsize::new(usize::MAX),
            done: Notify::new(),
        });
        let (hub, members) = system.block_on(async {
            let hub = Hub::new(
                None,
                Arc::new(PresenceBoard::default()),
                Duration::from_secs(600),
            )
            .start();
            for i in 0..sessions {
                let fake = FakeSession(counter.clone()).start();
                hub.do_send(RegisterConnection {
                    conn: ConnId(i as u64),
                    user: UserId(i as i64 + 1),
                    session_id: SessionId(format!("s{i}")),
                    link: ConnectionLink::of(&fake),
                });
            }
            let members: Vec<UserId> = (1..=sessions as i64).map(UserId).collect();
            (hub, members)
        });
        let chat = sessions as i64;
        let mut seq = 0;
        group.throughput(Throughput::Elements(sessions as u64));
        group.bench_with_input(
            BenchmarkId::new("event_to_sessions", sessions),
            &sessions,
            |b, _| {
                b.iter_custom(|iters| {
                    system.block_on(async {
                        let before = counter.count.load(Ordering::Relaxed);
                        counter
                            .target
                            .store(before + iters as usize * sessions, Ordering::Relaxed);
                        // The events (each with a wrap per member) are built
                        // before the clock starts: the writer hands them over
                        // ready-made.
                        let events: Vec<ChatEvent> = (0..iters)
                            .map(|_| {
                                seq += 1;
                                message(chat, seq, sessions)
                            })
                            .collect();
                        let started = Instant::now();
                        for event in events {
                            hub.do_send(ChatEventCommitted {
                                members: members.clone(),
                                event,
                                origin: None,
                            });
                        }
                        counter.done.notified().await;
                        started.elapsed()
                    })
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
