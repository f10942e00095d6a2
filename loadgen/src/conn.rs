//! A lean WebSocket client for the load generator: one socket per simulated
//! user, a writer task that turns send orders into frames from prepared
//! templates, and a reader task that matches acknowledgments and events to
//! the phase's tracker without building the protocol types.
//!
//! Why not the library's `Messenger`: it verifies, decrypts and stores every
//! message (an RSA private-key operation and a SQLite write per receipt) and
//! reconnects on its own; thousands of those in one process would measure
//! the generator, not the server. This client speaks the same frames.

use super::declared::{command_frame, parse_reply, CallError};
use super::stats::new_histogram;
use super::stats::Tracker;
use super::workload::{Render, Workload};
use ferrogram_client::ServerAddr;
use ferrogram_core::command::Command;
use ferrogram_core::proto::ws::ClientFrame;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Reply ids of setup calls have this bit; message sends carry
/// `phase << PHASE_SHIFT | index`.
const SETUP_ID: u64 = 1 << 63;
const PHASE_SHIFT: u32 = 40;

/// Latency histograms are sharded so receivers rarely wait for each other.
const SHARDS: usize = 16;

/// Largest frame accepted from the server (a group of 1,000 members' message).
const MAX_FRAME: usize = 4 * 1024 * 1024;

/// What every connection of a phase shares.
pub struct Phase {
    pub number: u64,
    pub start: Instant,
    /// The schedule's rate: message `k` was due at `k / rate` s.
    pub rate: f64,
    pub tracker: Tracker,
    e2e: Vec<Mutex<Histogram<u64>>>,
    ack: Vec<Mutex<Histogram<u64>>>,
    /// Refused sends by error code.
    pub errors: Mutex<HashMap<String, u64>>,
}

impl Phase {
    pub fn new(number: u64, rate: f64, messages: u64) -> Self {
        Self {
            number,
            start: Instant::now(),
            rate,
            tracker: Tracker::new(messages),
            e2e: (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
            ack: (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
            errors: Mutex::new(HashMap::new()),
        }
    }

    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// When message `index` was due, in µs from the phase start.
    pub fn due_us(&self, index: u64) -> u64 {
        #[allow(clippy::cast_precision_loss)]
        let secs = index as f64 / self.rate.max(1e-9);
        (secs * 1e6) as u64
    }

    /// The merged (end-to-end, ack) histograms.
    pub fn histograms(&self) -> (Histogram<u64>, Histogram<u64>) {
        let merge = |shards: &[Mutex<Histogram<u64>>]| {
            let mut all = new_histogram();
            for shard in shards {
                let shard = shard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let _ = all.add(&*shard);
            }
            all
        };
        (merge(&self.e2e), merge(&self.ack))
    }

    fn record(shards: &[Mutex<Histogram<u64>>], shard: usize, us: u64) {
        let mut h = shards[shard % SHARDS]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        h.saturating_record(us.max(1));
    }
}

/// The phase in force, swapped between phases of a sweep.
#[derive(Default)]
pub struct PhaseCell(RwLock<Option<Arc<Phase>>>);

impl PhaseCell {
    pub fn set(&self, phase: Option<Arc<Phase>>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = phase;
    }

    pub fn get(&self) -> Option<Arc<Phase>> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// What all connections share.
pub struct Shared {
    /// Random per process, part of every client message id.
    pub run: u32,
    pub phase: PhaseCell,
    pub workload: RwLock<Option<Arc<Workload>>>,
    /// Connections that closed (or failed) while they should have been open.
    pub dropped: AtomicU64,
    /// Set before closing on purpose, so those closes are not errors.
    pub closing: AtomicBool,
}

impl Shared {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            run: rand::random(),
            phase: PhaseCell::default(),
            workload: RwLock::new(None),
            dropped: AtomicU64::new(0),
            closing: AtomicBool::new(false),
        })
    }

    fn workload(&self) -> Option<Arc<Workload>> {
        self.workload
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// One message to send: which chat, which slot of the phase, and when it
/// was due (µs from the phase start).
#[derive(Debug, Clone, Copy)]
pub struct SendOrder {
    pub chat: u32,
    pub phase: u64,
    pub index: u64,
    pub due_us: u64,
}

enum Outgoing {
    Send(SendOrder),
    Raw(String),
    Close,
}

/// Setup calls waiting for their reply, by id: each gets the reply frame's text.
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<String>>>>;

/// How long a setup call waits for its reply.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// One open, authenticated connection.
pub struct Conn {
    pub user: usize,
    tx: mpsc::UnboundedSender<Outgoing>,
    pending: Pending,
    next_call: AtomicU64,
}

/// Socket options of the generator's connections.
#[derive(Debug, Clone, Copy)]
pub struct SocketOptions {
    /// Bind to this source address (spreads 10,000+ loopback connections
    /// over several addresses, so ephemeral ports do not run out).
    pub source: Option<IpAddr>,
    /// tungstenite's read buffer per connection (small for idle connections).
    pub read_buffer: usize,
    /// Largest frame accepted from the server.
    pub max_frame: usize,
}

impl SocketOptions {
    /// From `source`, with the buffers of a measuring connection.
    pub fn from(source: Option<IpAddr>) -> Self {
        Self {
            source,
            read_buffer: 64 * 1024,
            max_frame: MAX_FRAME,
        }
    }
}

impl Conn {
    /// Connects, authenticates and starts the connection's reader and writer.
    pub async fn open(
        addr: &ServerAddr,
        token: &str,
        user: usize,
        user_id: i64,
        options: SocketOptions,
        shared: Arc<Shared>,
    ) -> Result<Conn, String> {
        let socket = tokio::time::timeout(Duration::from_secs(30), connect(addr, token, options))
            .await
            .map_err(|_| "no WebSocket connection within 30 s".to_owned())??;
        let (sink, stream) = socket.split();
        let (tx, rx) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        tokio::spawn(write_loop(sink, rx, user, shared.clone()));
        tokio::spawn(read_loop(
            stream,
            Receiver {
                user,
                user_id,
                shared,
                pending: pending.clone(),
                last_seq: HashMap::new(),
            },
        ));
        Ok(Conn {
            user,
            tx,
            pending,
            next_call: AtomicU64::new(1),
        })
    }

    /// Queues a message send (never waits: the schedule is open loop).
    pub fn send(&self, order: SendOrder) -> bool {
        self.tx.send(Outgoing::Send(order)).is_ok()
    }

    /// Calls command `C` and waits for its reply (set-up only, not measured).
    pub async fn call<C: Command>(&self, request: &C::Req) -> Result<C::Resp, CallError> {
        self.call_prepared::<C>(|id| command_frame::<C>(id, request).map_err(|e| e.to_string()))
            .await
    }

    /// Calls command `C` with a frame made by `frame` for the reply id it is
    /// given (a frame rendered from a template of `C`'s frames), and waits
    /// for the reply.
    pub async fn call_prepared<C: Command>(
        &self,
        frame: impl FnOnce(u64) -> Result<String, String>,
    ) -> Result<C::Resp, CallError> {
        let command = C::NAME;
        let id = SETUP_ID | self.next_call.fetch_add(1, Ordering::Relaxed);
        let frame = frame(id).map_err(|message| CallError::Protocol { command, message })?;
        let (reply, answer) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, reply);
        if self.tx.send(Outgoing::Raw(frame)).is_err() {
            return Err(CallError::Closed { command });
        }
        match tokio::time::timeout(CALL_TIMEOUT, answer).await {
            Ok(Ok(text)) => parse_reply::<C>(&text),
            Ok(Err(_)) => Err(CallError::Closed { command }),
            Err(_) => Err(CallError::TimedOut {
                command,
                seconds: CALL_TIMEOUT.as_secs(),
            }),
        }
    }

    /// Sends a close frame; the connection ends once the server answers.
    pub fn close(&self) {
        let _ = self.tx.send(Outgoing::Close);
    }
}

/// A TCP connection to a plain (not TLS) server, from `source` if given.
pub async fn tcp_connect(addr: &ServerAddr, source: Option<IpAddr>) -> Result<TcpStream, String> {
    let target: SocketAddr = tokio::net::lookup_host((addr.host.as_str(), addr.port))
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", addr.host))?
        .next()
        .ok_or_else(|| format!("{} has no address", addr.host))?;
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    if let Some(source) = source.filter(|s| s.is_ipv4() == target.is_ipv4()) {
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| format!("cannot bind to {source}: {e}"))?;
    }
    let tcp = socket
        .connect(target)
        .await
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    tcp.set_nodelay(true).ok();
    Ok(tcp)
}

/// Opens a WebSocket and authenticates it with `token` (until `ready`).
pub async fn connect(
    addr: &ServerAddr,
    token: &str,
    options: SocketOptions,
) -> Result<Socket, String> {
    if addr.tls {
        // TLS: the library's own connector (system roots plus the CA file).
        return ferrogram_client::ws::open(addr, token, Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string());
    }
    let tcp = tcp_connect(addr, options.source).await?;
    let url = ferrogram_client::ws::ws_url(addr);
    let request = url.into_client_request().map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default()
        .read_buffer_size(options.read_buffer)
        .write_buffer_size(0)
        .max_message_size(Some(options.max_frame))
        .max_frame_size(Some(options.max_frame));
    let (mut socket, _) = tokio_tungstenite::client_async_with_config(
        request,
        MaybeTlsStream::Plain(tcp),
        Some(config),
    )
    .await
    .map_err(|e| format!("WebSocket upgrade failed: {e}"))?;
    let auth = serde_json::to_string(&ClientFrame::Auth {
        token: token.to_owned(),
    })
    .map_err(|e| e.to_string())?;
    socket
        .send(Message::text(auth))
        .await
        .map_err(|e| e.to_string())?;
    while let Some(message) = socket.next().await {
        match message.map_err(|e| e.to_string())? {
            Message::Text(text) => {
                let frame: Frame<'_> =
                    serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
                return match frame.kind {
                    "ready" => Ok(socket),
                    _ => Err(format!("authentication refused: {}", text.as_str())),
                };
            }
            Message::Close(close) => {
                return Err(format!(
                    "closed before ready: {}",
                    close.map(|c| c.reason.to_string()).unwrap_or_default()
                ))
            }
            _ => {}
        }
    }
    Err("closed before ready".into())
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<Socket, Message>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    user: usize,
    shared: Arc<Shared>,
) {
    let mut buf = String::new();
    while let Some(first) = rx.recv().await {
        // Everything queued goes out with one flush.
        let mut next = Some(first);
        while let Some(item) = next.take() {
            let message = match item {
                Outgoing::Send(order) => {
                    // Read each time: a sweep or a test may set up another workload.
                    let workload = shared.workload();
                    let Some(w) = workload.as_deref() else {
                        continue;
                    };
                    let chat = &w.chats[order.chat as usize];
                    buf.clear();
                    chat.template.render(
                        &mut buf,
                        &Render {
                            run: shared.run,
                            request_id: (order.phase << PHASE_SHIFT) | order.index,
                            phase: order.phase,
                            index: order.index,
                            due_us: order.due_us,
                            sender: w.user_ids[user],
                            sender_key: &w.sender_keys[w.identity_of[user]],
                        },
                    );
                    if let Some(phase) = shared.phase.get() {
                        if phase.number == order.phase {
                            let expected = u16::try_from(chat.recipients()).unwrap_or(u16::MAX);
                            phase.tracker.record_sent(order.index, expected);
                        }
                    }
                    Message::text(buf.clone())
                }
                Outgoing::Raw(text) => Message::text(text),
                Outgoing::Close => {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
            };
            if sink.feed(message).await.is_err() {
                return;
            }
            next = rx.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// The fields of a server frame the generator looks at; everything else
/// (the envelope above all) is skipped without being copied.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default, borrow)]
    event: Option<EventIn<'a>>,
    #[serde(default)]
    error: Option<ErrorIn>,
}

#[derive(Deserialize)]
struct EventIn<'a> {
    chat_id: i64,
    seq: i64,
    sender: i64,
    #[serde(borrow)]
    body: BodyIn<'a>,
}

#[derive(Deserialize)]
struct BodyIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default, borrow)]
    client_msg_id: Option<&'a str>,
}

#[derive(Deserialize)]
struct ErrorIn {
    code: String,
}

struct Receiver {
    user: usize,
    user_id: i64,
    shared: Arc<Shared>,
    pending: Pending,
    /// Newest seq seen per chat: an event not newer is a duplicate.
    last_seq: HashMap<i64, i64>,
}

/// `run.phase.index.due_us` (run in hex), as the templates write
/// `client_msg_id`.
pub fn parse_client_msg_id(id: &str) -> Option<(u32, u64, u64, u64)> {
    let mut parts = id.splitn(4, '.');
    let run = u32::from_str_radix(parts.next()?, 16).ok()?;
    let phase = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    let due = parts.next()?.parse().ok()?;
    Some((run, phase, index, due))
}

/// What the generator needs of a message event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHead<'a> {
    pub chat_id: i64,
    pub seq: i64,
    pub sender: i64,
    pub client_msg_id: &'a str,
}

/// Reads a message event's head without parsing its envelope: the server
/// writes `chat_id`, `seq`, `sender`, `at` and the body's `type` and
/// `client_msg_id` before the envelope (field order of the protocol types),
/// so for a group of 100 only the first few hundred of ~60,000 bytes are
/// looked at. `None` for anything else (then the frame is parsed fully).
pub fn scan_message_event(text: &str) -> Option<EventHead<'_>> {
    const PREFIX: &str = r#"{"type":"event","event":{"chat_id":"#;
    let rest = text.strip_prefix(PREFIX)?;
    let head = &rest[..rest.len().min(512)];
    let head = &head[..head.find(r#""envelope""#)?];
    let number = |key: &str| -> Option<i64> {
        let at = head.find(key)? + key.len();
        let digits = head[at..]
            .split(|c: char| c != '-' && !c.is_ascii_digit())
            .next()?;
        digits.parse().ok()
    };
    let chat_id = head.split(',').next()?.parse().ok()?;
    let seq = number(r#","seq":"#)?;
    let sender = number(r#","sender":"#)?;
    let body = &head[head.find(r#""body":{"type":"message","client_msg_id":""#)?..];
    let id_start = body.find(r#""client_msg_id":""#)? + r#""client_msg_id":""#.len();
    let id_len = body[id_start..].find('"')?;
    Some(EventHead {
        chat_id,
        seq,
        sender,
        client_msg_id: &body[id_start..id_start + id_len],
    })
}

impl Receiver {
    fn on_text(&mut self, text: &str, phase: &mut Option<Arc<Phase>>) {
        if let Some(head) = scan_message_event(text) {
            return self.on_message_event(head, phase);
        }
        let Ok(frame) = serde_json::from_str::<Frame<'_>>(text) else {
            return;
        };
        match frame.kind {
            "reply" => {
                let Some(id) = frame.id else { return };
                if id & SETUP_ID != 0 {
                    return self.on_setup_reply(id, text);
                }
                let Some(p) = current(phase, &self.shared, id >> PHASE_SHIFT) else {
                    return;
                };
                let index = id & ((1 << PHASE_SHIFT) - 1);
                if let Some(error) = frame.error {
                    p.tracker.record_refused(index);
                    *p.errors
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .entry(error.code)
                        .or_default() += 1;
                    return;
                }
                let now = p.now_us();
                if p.tracker.record_ack(index, now) {
                    Phase::record(&p.ack, self.user, now.saturating_sub(p.due_us(index)));
                }
            }
            "event" => {
                let Some(event) = frame.event else { return };
                if event.body.kind != "message" {
                    return;
                }
                let Some(client_msg_id) = event.body.client_msg_id else {
                    return;
                };
                self.on_message_event(
                    EventHead {
                        chat_id: event.chat_id,
                        seq: event.seq,
                        sender: event.sender,
                        client_msg_id,
                    },
                    phase,
                );
            }
            _ => {}
        }
    }

    fn on_message_event(&mut self, event: EventHead<'_>, phase: &mut Option<Arc<Phase>>) {
        let Some((run, phase_no, index, due_us)) = parse_client_msg_id(event.client_msg_id) else {
            return;
        };
        if run != self.shared.run {
            return; // another generator's message
        }
        let last = self.last_seq.entry(event.chat_id).or_insert(0);
        let duplicate = event.seq <= *last;
        *last = (*last).max(event.seq);
        let Some(p) = current(phase, &self.shared, phase_no) else {
            return;
        };
        if duplicate {
            p.tracker.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if event.sender == self.user_id {
            p.tracker.echoes.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let now = p.now_us();
        p.tracker.record_delivery(index, now);
        Phase::record(&p.e2e, self.user, now.saturating_sub(due_us));
    }

    /// Hands a setup call's reply to the caller, who reads it as the
    /// response of the command it called.
    fn on_setup_reply(&self, id: u64, text: &str) {
        let reply = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
        if let Some(reply) = reply {
            let _ = reply.send(text.to_owned());
        }
    }
}

/// The phase numbered `number`, refreshed from the shared cell when the
/// cached one is another; `None` for a phase that is over.
fn current(cached: &mut Option<Arc<Phase>>, shared: &Shared, number: u64) -> Option<Arc<Phase>> {
    if cached.as_ref().is_none_or(|p| p.number != number) {
        *cached = shared.phase.get();
    }
    cached.clone().filter(|p| p.number == number)
}

async fn read_loop(mut stream: futures_util::stream::SplitStream<Socket>, mut receiver: Receiver) {
    let mut phase = None;
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Text(text)) => receiver.on_text(text.as_str(), &mut phase),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if !receiver.shared.closing.load(Ordering::Relaxed) {
        receiver.shared.dropped.fetch_add(1, Ordering::Relaxed);
    }
    // Fail any setup call still waiting.
    receiver
        .pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogram_core::b64::B64;
    use ferrogram_core::ids::{ChatId, Seq, Timestamp, UserId};
    use ferrogram_core::proto::chat::{ChatEvent, EventBody};
    use ferrogram_core::proto::ws::ServerFrame;
    use ferrogram_core::proto::{Envelope, EnvelopeHeader};

    fn event_frame(body: EventBody) -> String {
        serde_json::to_string(&ServerFrame::Event {
            event: ChatEvent {
                chat_id: ChatId(42),
                seq: Seq::new(7),
                sender: UserId(-3),
                at: Timestamp::from_millis(1_700_000_000_000),
                body,
            },
        })
        .unwrap()
    }

    #[test]
    fn the_head_of_a_message_event_is_read_without_its_envelope() {
        let envelope = Envelope {
            version: 1,
            header: EnvelopeHeader {
                chat_id: ChatId(42),
                sender: UserId(-3),
                client_msg_id: "decoy".into(),
                sent_at: Timestamp::EPOCH,
            },
            sender_key: B64(vec![1; 32]),
            nonce: B64(vec![2; 12]),
            body: B64(vec![3; 2000]),
            wraps: vec![],
            signature: B64(vec![4; 384]),
            wrap_proof: None,
        };
        let text = event_frame(EventBody::Message {
            client_msg_id: "ab.2.15.123".into(),
            envelope,
        });
        let head = scan_message_event(&text).unwrap();
        assert_eq!(
            head,
            EventHead {
                chat_id: 42,
                seq: 7,
                sender: -3,
                client_msg_id: "ab.2.15.123",
            }
        );
        // what the full parse reads agrees
        let frame: Frame<'_> = serde_json::from_str(&text).unwrap();
        let event = frame.event.unwrap();
        assert_eq!((event.chat_id, event.seq, event.sender), (42, 7, -3));
        assert_eq!(event.body.client_msg_id, Some("ab.2.15.123"));
        // other events and frames are left to the full parse
        assert!(
            scan_message_event(&event_frame(EventBody::Renamed { title: "t".into() })).is_none()
        );
        assert!(scan_message_event(r#"{"type":"reply","id":1,"body":{}}"#).is_none());
        assert_eq!(parse_client_msg_id("ab.2.15.123"), Some((0xab, 2, 15, 123)));
        assert_eq!(parse_client_msg_id("zz.2.15"), None);
    }
}
