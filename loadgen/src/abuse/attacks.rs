//! The attacks of issue 11, one function each. Every attack first sets up
//! what it needs (accounts, chats, stored messages), then opens its [`Gate`]:
//! the caller starts the measured window (legitimate traffic, the prober,
//! the server watch) and hands back the instant the window ends. Attack
//! traffic comes from addresses of its own (127.0.1.x), never from the
//! legitimate users' (127.0.0.1-16) or the prober's.

use super::server::{database_bytes, mailed_code};
use super::{Attack, Env};
use crate::conn::{self, Conn, Shared, Socket, SocketOptions};
use crate::declared::{command_frame, plain_route, reply_from_value, CallError};
use crate::workload::{chat_template, Render, Template};
use ferrogram_client::ServerAddr;
use ferrogram_client::{Client, ClientOptions, Method, RegisterParams};
use ferrogram_core::b64::B64;
use ferrogram_core::command::{Command, API_PREFIX};
use ferrogram_core::commands::{
    ChangePassword, CreateDirectChat, CreateGroup, CreateSession, DeleteAccount, GetHistory,
    ListChats, SendMessage, Typing, Verify,
};
use ferrogram_core::ids::Seq;
use ferrogram_core::proto::ws::{ClientFrame, ResumePosition};
use ferrogram_core::proto::{
    ChangePasswordRequest, Chat, ChatList, ChatListRequest, ChatRef, CreateDirectRequest,
    CreateGroupRequest, DeleteAccountRequest, HistoryRequest, KdfParams, LoginRequest, MessageAck,
    VerifyRequest,
};
use futures_util::{stream, SinkExt, StreamExt};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

/// Text of a "64 KiB" message: its encrypted body is just under the
/// default `limits.max_message_bytes` (65,536) after padding.
pub const BIG_TEXT: usize = 65_000;
/// The official client refuses frames above this (16 MiB).
const CLIENT_MAX_FRAME: usize = 16 * 1024 * 1024;
/// `BIG_TEXT` messages stored before `non-reading` pipelines its history requests.
const HISTORY_MESSAGES: u64 = 200;
const HISTORY_REQUESTS: u64 = 400;
/// Unread sockets of one account and the messages sent to them.
const UNREAD_SOCKETS: usize = 150;
const UNREAD_MESSAGES: u64 = 250;
/// Groups the victim is added to (about 190 made her `chat.list` too big).
const FORCED_GROUPS: u64 = 250;
const HUGE_FRAME_SOCKETS: usize = 4;
const STALLED_BODIES: usize = 400;
const TRICKLED_BODIES: usize = 100;
const ARGON2_SOCKETS: usize = 10;
const ARGON2_IN_FLIGHT: usize = 4;
/// How often a victim or a stranger logs in during an attack: 8 times in
/// 20 s, under the default log-in limit of 10 per account per 5 minutes, so
/// any refusal is the attacker's doing.
const LOGIN_INTERVAL: Duration = Duration::from_millis(2500);

/// An attack address: 127.0.1.`n`.
fn attacker_ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 1, n))
}

/// What an attack did, for its row of the report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Outcome {
    /// The attacker's actions that reached the server (requests, sockets,
    /// frames, bytes: the detail says which).
    pub actions: u64,
    /// One line: what the attacker did and what it got.
    pub detail: String,
    /// For attacks on one person: whether she was unharmed (her chat list
    /// fits the client, her log-ins and her code still work, a stranger's
    /// log-ins succeed within a second). `None` for attacks on the server.
    pub victim_ok: Option<bool>,
}

/// Where an attack says "set up, start measuring" and learns when the
/// window ends.
pub struct Gate {
    ready: oneshot::Sender<()>,
    go: oneshot::Receiver<Instant>,
}

/// The caller's side of a [`Gate`].
pub struct GateKeeper {
    pub ready: oneshot::Receiver<()>,
    pub go: oneshot::Sender<Instant>,
}

pub fn gate() -> (Gate, GateKeeper) {
    let (ready_tx, ready_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel();
    (
        Gate {
            ready: ready_tx,
            go: go_rx,
        },
        GateKeeper {
            ready: ready_rx,
            go: go_tx,
        },
    )
}

impl Gate {
    /// Set-up done: waits for the window and answers its end.
    async fn open(self) -> Result<Instant, String> {
        let _ = self.ready.send(());
        self.go
            .await
            .map_err(|_| "the run was abandoned".to_owned())
    }
}

/// Runs `attack` against the server of `env`.
pub async fn run(attack: Attack, env: Arc<Env>, gate: Gate) -> Result<Outcome, String> {
    match attack {
        Attack::HugeFrame => huge_frame(&env, gate).await,
        Attack::SlowBody => slow_body(&env, gate).await,
        Attack::ManySockets => many_sockets(&env, gate).await,
        Attack::NonReading => non_reading(&env, gate).await,
        Attack::ForceAdd => force_add(&env, gate).await,
        Attack::Lockout => lockout(&env, gate).await,
        Attack::Argon2 => argon2(&env, gate).await,
        Attack::Flood => flood(&env, gate).await,
        Attack::CodeVoid => code_void(&env, gate).await,
    }
}

/// Counts of outcomes by name (error codes, statuses).
#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    fn add(&self, key: impl Into<String>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key.into())
            .or_default() += 1;
    }

    fn total(&self) -> u64 {
        self.map().values().sum()
    }

    fn map(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `ok 12, rate_limited 400`.
    fn show(&self) -> String {
        let map = self.map();
        if map.is_empty() {
            return "none".into();
        }
        map.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn random_b64(len: usize) -> B64 {
    B64((0..len).map(|_| rand::random::<u8>()).collect())
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// An attacking account's connection (it reads its replies).
async fn attacker_conn(env: &Env, user: usize, ip: u8) -> Result<Conn, String> {
    let record = &env.creds.users[user];
    Conn::open(
        &env.addr,
        &record.token,
        user,
        record.user_id.0,
        SocketOptions::from(Some(attacker_ip(ip))),
        Shared::new(),
    )
    .await
}

/// An attacking account's bare socket (nothing reads it unless told),
/// accepting frames up to `max_frame` (default: as the fleet's).
async fn attacker_socket(
    env: &Env,
    user: usize,
    ip: u8,
    max_frame: Option<usize>,
) -> Result<Socket, String> {
    let mut options = SocketOptions::from(Some(attacker_ip(ip)));
    options.max_frame = max_frame.unwrap_or(options.max_frame);
    tokio::time::timeout(
        Duration::from_secs(10),
        conn::connect(&env.addr, &env.creds.users[user].token, options),
    )
    .await
    .map_err(|_| "no WebSocket within 10 s".to_owned())?
}

/// Renders 64 KiB `message.send` frames for one chat, each with a new
/// client message id.
struct BigMessages {
    template: Template,
    sender: i64,
    sender_key: String,
    run: u32,
    next: AtomicU64,
}

impl BigMessages {
    /// For the chat `chat` sent by user `sender`.
    fn for_chat(env: &Env, chat: &Chat, sender: usize) -> Result<BigMessages, String> {
        let members: Vec<(i64, usize)> = chat
            .members
            .iter()
            .map(|m| (m.user.id.0, env.identity_of(m.user.id.0)))
            .collect();
        let record = &env.creds.users[sender];
        Ok(BigMessages {
            template: chat_template(chat.id.0, &members, &env.sealed)?,
            sender: record.user_id.0,
            sender_key: env.sealed.sender_keys[record.identity].clone(),
            run: rand::random(),
            next: AtomicU64::new(0),
        })
    }

    /// The next message's frame, under reply id `id` (`None`: its index).
    fn frame(&self, id: Option<u64>) -> String {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let mut out = String::new();
        self.template.render(
            &mut out,
            &Render {
                run: self.run,
                request_id: id.unwrap_or(index),
                phase: 9,
                index,
                due_us: 0,
                sender: self.sender,
                sender_key: &self.sender_key,
            },
        );
        out
    }

    /// Sends one message through `conn` and waits for its ack.
    async fn send(&self, conn: &Conn) -> Result<MessageAck, CallError> {
        conn.call_prepared::<SendMessage>(|id| Ok(self.frame(Some(id))))
            .await
    }

    /// Sends `count` messages, `parallel` at a time, until `until`; acks by outcome.
    async fn send_many(&self, conn: &Conn, count: u64, parallel: usize, until: Instant) -> Tally {
        let tally = Tally::default();
        stream::iter(0..count)
            .for_each_concurrent(parallel, |_| async {
                if Instant::now() >= until {
                    return;
                }
                match self.send(conn).await {
                    Ok(_) => tally.add("acked"),
                    Err(e) => tally.add(e.code()),
                }
            })
            .await;
        tally
    }
}

/// A direct chat between two attacking accounts, created by `a`.
async fn direct_chat(env: &Env, conn: &Conn, b: usize) -> Result<Chat, CallError> {
    let request = CreateDirectRequest {
        user_id: env.creds.users[b].user_id,
    };
    conn.call::<CreateDirectChat>(&request).await
}

// --- a) huge declared frame --------------------------------------------------

/// Upgrades a raw TCP connection to a WebSocket (no auth frame follows).
async fn upgrade(tcp: &mut TcpStream, addr: &ServerAddr) -> Result<(), String> {
    let request = format!(
        "GET {API_PREFIX}/ws HTTP/1.1\r\nHost: {}:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        addr.host, addr.port
    );
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 || head.len() > 16 * 1024 {
            return Err("no upgrade answer".into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    if head.starts_with(b"HTTP/1.1 101") {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&head[..head.len().min(80)]).into_owned())
    }
}

/// The header of a masked text frame declaring 2^62 payload bytes.
fn huge_frame_header() -> Vec<u8> {
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 62).to_be_bytes());
    header.extend_from_slice(&[0x12, 0x34, 0x56, 0x78]);
    header
}

async fn huge_frame(env: &Env, gate: Gate) -> Result<Outcome, String> {
    let until = gate.open().await?;
    let bytes = AtomicU64::new(0);
    let sockets = AtomicU64::new(0);
    let chunk = vec![b'x'; 64 * 1024];
    let one = |_| async {
        while Instant::now() < until {
            let Ok(Ok(mut tcp)) = tokio::time::timeout(
                Duration::from_secs(5),
                conn::tcp_connect(&env.addr, Some(attacker_ip(1))),
            )
            .await
            else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let upgraded =
                tokio::time::timeout(Duration::from_secs(5), upgrade(&mut tcp, &env.addr)).await;
            if !matches!(upgraded, Ok(Ok(()))) || tcp.write_all(&huge_frame_header()).await.is_err()
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            sockets.fetch_add(1, Ordering::Relaxed);
            let deadline = tokio::time::Instant::from_std(until);
            while let Ok(Ok(())) = tokio::time::timeout_at(deadline, tcp.write_all(&chunk)).await {
                bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
    };
    stream::iter(0..HUGE_FRAME_SOCKETS)
        .for_each_concurrent(HUGE_FRAME_SOCKETS, one)
        .await;
    let bytes = bytes.into_inner();
    Ok(Outcome {
        actions: bytes,
        detail: format!(
            "{} sockets declared a 2^62-byte frame before auth; the server took {:.0} MiB of it",
            sockets.into_inner(),
            mib(bytes)
        ),
        victim_ok: None,
    })
}

// --- b) slow request bodies ---------------------------------------------------

/// Opens a log-in request (`session.create`: `POST /api/v1/sessions`)
/// declaring a 100-byte body and sends 1 byte of it.
async fn stalled_body(addr: &ServerAddr) -> Option<TcpStream> {
    let mut tcp = tokio::time::timeout(
        Duration::from_secs(5),
        conn::tcp_connect(addr, Some(attacker_ip(2))),
    )
    .await
    .ok()?
    .ok()?;
    let (method, path) = plain_route::<CreateSession>();
    let head = format!(
        "{} {path} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{",
        method.as_str(),
        addr.host,
        addr.port
    );
    tcp.write_all(head.as_bytes()).await.ok()?;
    Some(tcp)
}

/// Whether the server still holds the connection: nothing to read and no EOF.
fn still_held(tcp: &TcpStream) -> bool {
    let mut buf = [0u8; 512];
    matches!(tcp.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

async fn open_stalled(addr: &ServerAddr, count: usize) -> Vec<TcpStream> {
    stream::iter(0..count)
        .map(|_| stalled_body(addr))
        .buffer_unordered(32)
        .filter_map(|s| async move { s })
        .collect()
        .await
}

async fn slow_body(env: &Env, gate: Gate) -> Result<Outcome, String> {
    let until = gate.open().await?;
    let stalled = open_stalled(&env.addr, STALLED_BODIES).await;
    let mut trickling = open_stalled(&env.addr, TRICKLED_BODIES).await;
    let opened = (stalled.len() + trickling.len()) as u64;
    let mut open = vec![true; trickling.len()];
    while Instant::now() < until {
        let next = (Instant::now() + Duration::from_secs(2)).min(until);
        for (tcp, open) in trickling.iter_mut().zip(open.iter_mut()) {
            if *open {
                let wrote =
                    tokio::time::timeout(Duration::from_millis(200), tcp.write_all(b" ")).await;
                *open = matches!(wrote, Ok(Ok(())));
            }
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
    }
    let held = stalled.iter().filter(|t| still_held(t)).count();
    let trickle_held = trickling
        .iter()
        .zip(&open)
        .filter(|(t, open)| **open && still_held(t))
        .count();
    Ok(Outcome {
        actions: opened,
        detail: format!(
            "unauthenticated request bodies that never finish: held at the end {held} of {} stalled after 1 byte, {trickle_held} of {} trickling 1 byte / 2 s",
            stalled.len(),
            trickling.len()
        ),
        victim_ok: None,
    })
}

// --- c) many WebSockets of one token ------------------------------------------

async fn many_sockets(env: &Env, gate: Gate) -> Result<Outcome, String> {
    let until = gate.open().await?;
    let refused = Tally::default();
    let sockets: Vec<Socket> = stream::iter(0..env.socket_budget)
        .map(|_| async {
            if Instant::now() >= until {
                return None;
            }
            match attacker_socket(env, env.attacker, 3, None).await {
                Ok(socket) => Some(socket),
                Err(e) => {
                    refused.add(e.chars().take(60).collect::<String>());
                    None
                }
            }
        })
        .buffer_unordered(32)
        .filter_map(|s| async move { s })
        .collect()
        .await;
    tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
    let opened = sockets.len() as u64;
    drop(sockets);
    Ok(Outcome {
        actions: opened,
        detail: format!(
            "{opened} WebSockets open at once for one token from one address (budget {}); refused {}: {}",
            env.socket_budget,
            refused.total(),
            refused.show()
        ),
        victim_ok: None,
    })
}

// --- d) sockets that never read -------------------------------------------------

async fn non_reading(env: &Env, gate: Gate) -> Result<Outcome, String> {
    let x = attacker_conn(env, env.attacker, 4).await?;
    let chat = direct_chat(env, &x, env.helper).await?;
    let big = BigMessages::for_chat(env, &chat, env.attacker)?;
    let far = Instant::now() + Duration::from_secs(600);
    let stored = big.send_many(&x, HISTORY_MESSAGES, 8, far).await;
    let mut piper = attacker_socket(env, env.attacker, 4, None).await?;
    let mut unread = Vec::new();
    for _ in 0..UNREAD_SOCKETS {
        if let Ok(socket) = attacker_socket(env, env.helper, 5, None).await {
            unread.push(socket);
        }
    }
    let until = gate.open().await?;
    let deadline = tokio::time::Instant::from_std(until);
    let pipelined = async {
        let mut written = 0u64;
        let history = HistoryRequest {
            chat_id: chat.id,
            before_seq: None,
            after_seq: None,
            limit: Some(200),
        };
        for id in 0..HISTORY_REQUESTS {
            let Ok(frame) = command_frame::<GetHistory>(id, &history) else {
                break;
            };
            let sent = tokio::time::timeout_at(deadline, piper.send(Message::text(frame))).await;
            if !matches!(sent, Ok(Ok(()))) {
                break;
            }
            written += 1;
        }
        written
    };
    let (written, acks) = tokio::join!(pipelined, big.send_many(&x, UNREAD_MESSAGES, 8, until));
    tokio::time::sleep_until(deadline).await;
    let unread_count = unread.len();
    drop(unread);
    Ok(Outcome {
        actions: written + acks.total(),
        detail: format!(
            "one unread socket pipelined {written} of {HISTORY_REQUESTS} {} (chat of {} x 64 KiB: {}); 64 KiB messages to unread sockets of one account ({} of {UNREAD_SOCKETS} opened): {}",
            GetHistory::NAME,
            HISTORY_MESSAGES,
            stored.show(),
            unread_count,
            acks.show()
        ),
        victim_ok: None,
    })
}

// --- e) force-added to many groups -----------------------------------------------

/// Sends command `C` on a bare socket and reads until its reply: (the
/// reply frame, bytes of all frames read); `reply_from_value` reads its answer.
async fn request<C: Command>(
    socket: &mut Socket,
    request: &C::Req,
) -> Result<(Value, u64), String> {
    let id = 7_000_000u64;
    let frame = command_frame::<C>(id, request).map_err(|e| e.to_string())?;
    socket
        .send(Message::text(frame))
        .await
        .map_err(|e| e.to_string())?;
    read_until(socket, |v| v["type"] == "reply" && v["id"] == id).await
}

/// Reads frames until one matches; (that frame, bytes of all frames read).
async fn read_until(
    socket: &mut Socket,
    done: impl Fn(&Value) -> bool,
) -> Result<(Value, u64), String> {
    let mut bytes = 0u64;
    while let Some(message) = socket.next().await {
        let message = message.map_err(|e| format!("after {bytes} bytes: {e}"))?;
        if let Message::Text(text) = message {
            bytes += text.len() as u64;
            let value: Value = serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
            if done(&value) {
                return Ok((value, bytes));
            }
        }
    }
    Err(format!("closed after {bytes} bytes"))
}

async fn force_add(env: &Env, gate: Gate) -> Result<Outcome, String> {
    let x = attacker_conn(env, env.attacker, 6).await?;
    let victim_id = env.creds.users[env.victim].user_id;
    let until = gate.open().await?;
    // Leave the last quarter of the window for the victim's download.
    let window = until.saturating_duration_since(Instant::now());
    let make_until = until.checked_sub(window / 4).unwrap_or(until);
    let made = Tally::default();
    let sent = Tally::default();
    let (x, made, sent) = (&x, &made, &sent);
    stream::iter(0..FORCED_GROUPS)
        .for_each_concurrent(4, |i| async move {
            if Instant::now() >= make_until {
                return;
            }
            let request = CreateGroupRequest {
                title: format!("abuse {i}"),
                member_ids: vec![victim_id],
            };
            let chat = match x.call::<CreateGroup>(&request).await {
                Ok(chat) => chat,
                Err(e) => return made.add(e.code()),
            };
            made.add("created");
            match BigMessages::for_chat(env, &chat, env.attacker) {
                Ok(big) => match big.send(x).await {
                    Ok(_) => sent.add("acked"),
                    Err(e) => sent.add(e.code()),
                },
                Err(e) => sent.add(e),
            }
        })
        .await;
    // The victim's first sync: the chat list, then every chat from seq 0.
    let mut victim = attacker_socket(env, env.victim, 7, Some(1 << 30)).await?;
    let started = Instant::now();
    let (list, list_bytes) = request::<ListChats>(&mut victim, &ChatListRequest::default()).await?;
    let list_secs = started.elapsed().as_secs_f64();
    let (positions, list_text): (Vec<ResumePosition>, String) =
        match reply_from_value::<ListChats>(list) {
            Ok(ChatList { chats, .. }) => {
                let positions: Vec<_> = chats
                    .iter()
                    .map(|c| ResumePosition {
                        chat_id: c.id,
                        seq: Seq::ZERO,
                    })
                    .collect();
                let text = format!("{} chats", positions.len());
                (positions, text)
            }
            Err(e) => (Vec::new(), format!("refused ({})", e.code())),
        };
    let started = Instant::now();
    let resume =
        serde_json::to_string(&ClientFrame::Resume { positions }).map_err(|e| e.to_string())?;
    victim
        .send(Message::text(resume))
        .await
        .map_err(|e| e.to_string())?;
    let resumed = tokio::time::timeout(
        Duration::from_secs(120),
        read_until(&mut victim, |v| v["type"] == "resumed"),
    )
    .await;
    let resume_text = match resumed {
        Ok(Ok((_, bytes))) => format!(
            "{:.1} MiB in {:.1} s",
            mib(bytes),
            started.elapsed().as_secs_f64()
        ),
        Ok(Err(e)) => format!("failed: {e}"),
        Err(_) => "no end within 120 s".into(),
    };
    let fits = list_bytes as usize <= CLIENT_MAX_FRAME;
    let too_big = if fits {
        ""
    } else {
        " (over the client's 16 MiB: refused)"
    };
    Ok(Outcome {
        actions: made.total() + sent.total(),
        detail: format!(
            "groups with the victim: {}; one 64 KiB message in each: {}; her {}: {list_text}, {:.1} MiB in one frame{too_big}, {list_secs:.1} s; resume of all: {resume_text}",
            made.show(),
            sent.show(),
            ListChats::NAME,
            mib(list_bytes)
        ),
        victim_ok: Some(fits),
    })
}

// --- f) log-in lock-out -------------------------------------------------------------

/// A REST client whose connections come from `ip`.
async fn client_from(env: &Env, ip: IpAddr) -> Result<Client, String> {
    rest_client(&env.addr, ip).await
}

/// A REST client of `addr` whose connections come from `ip`.
pub(super) async fn rest_client(addr: &ServerAddr, ip: IpAddr) -> Result<Client, String> {
    Client::connect_with(
        addr.clone(),
        ClientOptions {
            local_address: Some(ip),
            ..ClientOptions::default()
        },
    )
    .await
    .map_err(|e| e.to_string())
}

/// Sends command `C` over REST (its declared method and path) with the
/// requests of `body` from `client` until `until`, `parallel` at a time
/// (20 ms apart each); answers by status and code.
async fn hammer<C: Command>(
    client: &Client,
    body: impl Fn() -> C::Req,
    parallel: usize,
    until: Instant,
) -> Tally {
    let (method, path) = plain_route::<C>();
    let method = Method::from_bytes(method.as_str().as_bytes()).unwrap_or(Method::POST);
    let tally = Tally::default();
    stream::iter(0..parallel)
        .for_each_concurrent(parallel, |_| async {
            while Instant::now() < until {
                let request = serde_json::to_value(body()).ok();
                match client.raw(method.clone(), path, request, None).await {
                    Ok((status, answer)) => tally.add(format!(
                        "{status} {}",
                        answer["error"]["code"].as_str().unwrap_or("")
                    )),
                    Err(e) => tally.add(e.to_string().chars().take(40).collect::<String>()),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    tally
}

/// Logs in as `email` every [`LOGIN_INTERVAL`] until `until`: (outcomes,
/// latencies in ms).
async fn keep_logging_in(
    client: &Client,
    email: &str,
    password: &str,
    until: Instant,
) -> (Tally, Vec<f64>) {
    let tally = Tally::default();
    let mut ms = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        match client.login(email, password, Some("abuse test")).await {
            Ok(session) => {
                tally.add("ok");
                ms.push(started.elapsed().as_secs_f64() * 1000.0);
                let _ = session.logout().await;
            }
            Err(e) => tally.add(
                e.code()
                    .map_or_else(|| e.to_string(), |c| c.as_str().to_owned()),
            ),
        }
        let next = started + LOGIN_INTERVAL;
        tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
    }
    ms.sort_by(f64::total_cmp);
    (tally, ms)
}

/// Every log-in succeeded (and there was one).
fn all_ok(logins: &Tally) -> bool {
    let map = logins.map();
    map.len() == 1 && map.contains_key("ok")
}

fn latency_text(ms: &[f64]) -> String {
    match (ms.get(ms.len() / 2), ms.last()) {
        (Some(p50), Some(max)) => format!("median {p50:.0} ms, slowest {max:.0} ms"),
        _ => "no successful log-in".into(),
    }
}

async fn lockout(env: &Env, gate: Gate) -> Result<Outcome, String> {
    let accounts = env.normal.as_ref().ok_or("needs the normal accounts")?;
    let attacker = client_from(env, attacker_ip(8)).await?;
    let victim = client_from(env, attacker_ip(9)).await?;
    let email = accounts.lockout_victim.clone();
    let until = gate.open().await?;
    let wrong = || LoginRequest {
        email: email.clone(),
        auth_key: random_b64(32),
        device_name: Some("x".into()),
    };
    let (attacks, (logins, ms)) = tokio::join!(
        hammer::<CreateSession>(&attacker, wrong, 4, until),
        keep_logging_in(&victim, &accounts.lockout_victim, &accounts.password, until)
    );
    Ok(Outcome {
        actions: attacks.total(),
        detail: format!(
            "wrong log-ins for the victim's email from another address: {}; her own log-ins: {} ({})",
            attacks.show(),
            logins.show(),
            latency_text(&ms)
        ),
        victim_ok: Some(all_ok(&logins)),
    })
}

// --- g) Argon2 flood ------------------------------------------------------------------

/// Sends wrong password proofs on `conn` until `until`, alternating
/// `me.delete` and `me.change_password`.
async fn wrong_proofs(conn: &Conn, first: usize, until: Instant, proofs: &Tally) {
    /// `command outcome`.
    fn outcome<C: Command>(answer: Result<C::Resp, CallError>) -> String {
        match answer {
            Ok(_) => format!("{} accepted", C::NAME),
            Err(e) => format!("{} {}", C::NAME, e.code()),
        }
    }
    let mut k = first;
    while Instant::now() < until {
        k += 1;
        let answer = if k.is_multiple_of(2) {
            let request = DeleteAccountRequest {
                auth_key: random_b64(32),
            };
            outcome::<DeleteAccount>(conn.call::<DeleteAccount>(&request).await)
        } else {
            let request = ChangePasswordRequest {
                old_auth_key: random_b64(32),
                new_auth_key: random_b64(32),
                new_kdf_salt: random_b64(16),
                new_kdf: KdfParams::DEFAULT,
                sealed_keys: random_b64(512),
            };
            outcome::<ChangePassword>(conn.call::<ChangePassword>(&request).await)
        };
        proofs.add(answer);
    }
}

async fn argon2(env: &Env, gate: Gate) -> Result<Outcome, String> {
    let accounts = env.normal.as_ref().ok_or("needs the normal accounts")?;
    let flooder = client_from(env, attacker_ip(10))
        .await?
        .login(&accounts.flooder, &accounts.password, Some("abuse flooder"))
        .await
        .map_err(|e| e.to_string())?;
    let stranger = client_from(env, attacker_ip(11)).await?;
    let shared = Shared::new();
    let mut conns = Vec::new();
    for i in 0..ARGON2_SOCKETS {
        conns.push(
            Conn::open(
                &env.addr,
                flooder.token(),
                i,
                flooder.user_id().0,
                SocketOptions::from(Some(attacker_ip(10))),
                shared.clone(),
            )
            .await?,
        );
    }
    let until = gate.open().await?;
    let proofs = Tally::default();
    let started = Instant::now();
    let flood = futures_util::future::join_all(
        (0..conns.len() * ARGON2_IN_FLIGHT)
            .map(|i| wrong_proofs(&conns[i / ARGON2_IN_FLIGHT], i, until, &proofs)),
    );
    let (_, (logins, ms)) = tokio::join!(
        flood,
        keep_logging_in(&stranger, &accounts.stranger, &accounts.password, until)
    );
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    #[allow(clippy::cast_precision_loss)]
    let rate = proofs.total() as f64 / secs;
    Ok(Outcome {
        actions: proofs.total(),
        detail: format!(
            "wrong password proofs from {ARGON2_SOCKETS} sockets, {rate:.0}/s: {}; a stranger's log-ins meanwhile: {} ({}, client-side key derivation included)",
            proofs.show(),
            logins.show(),
            latency_text(&ms)
        ),
        victim_ok: Some(all_ok(&logins) && ms.last().is_some_and(|max| *max < 1000.0)),
    })
}

// --- h) typing and send flood -------------------------------------------------------------

/// Writes frames from `next` on `socket` until `until` (or `next` fails)
/// while a task of its own counts the replies by outcome.
async fn blast(
    socket: Socket,
    next: impl Fn(u64) -> Result<String, String>,
    until: Instant,
) -> (u64, Tally) {
    let (mut sink, mut stream) = socket.split();
    let deadline = tokio::time::Instant::from_std(until);
    let reader = tokio::spawn(async move {
        let replies = Tally::default();
        loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let value: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    match value["type"].as_str() {
                        Some("reply") => {
                            replies.add(value["error"]["code"].as_str().unwrap_or("ok"));
                        }
                        Some("error") => replies.add(format!(
                            "error frame {}",
                            value["error"]["code"].as_str().unwrap_or("?")
                        )),
                        _ => {}
                    }
                }
                Ok(Some(Ok(Message::Close(close)))) => {
                    replies.add(format!(
                        "closed {}",
                        close.map(|c| u16::from(c.code)).unwrap_or_default()
                    ));
                    break;
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => {
                    replies.add(format!("closed ({e})"));
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        replies
    });
    let mut written = 0u64;
    while let Ok(frame) = next(written) {
        match tokio::time::timeout_at(deadline, sink.send(Message::text(frame))).await {
            Ok(Ok(())) => written += 1,
            _ => break,
        }
    }
    (written, reader.await.unwrap_or_default())
}

async fn flood(env: &Env, gate: Gate) -> Result<Outcome, String> {
    let x = attacker_conn(env, env.attacker, 12).await?;
    let chat = direct_chat(env, &x, env.helper).await?;
    let big = BigMessages::for_chat(env, &chat, env.attacker)?;
    let typing_socket = attacker_socket(env, env.attacker, 12, None).await?;
    let sender = attacker_socket(env, env.attacker, 12, None).await?;
    let log = env.data_dir.join("commands.log");
    let log_size = || std::fs::metadata(&log).map_or(0, |m| m.len());
    let until = gate.open().await?;
    let started = Instant::now();
    let (db_before, log_before) = (database_bytes(&env.data_dir), log_size());
    let typing_in = ChatRef { chat_id: chat.id };
    let typing = |id: u64| command_frame::<Typing>(id, &typing_in).map_err(|e| e.to_string());
    let ((typed, typing_replies), (sends, send_replies)) = tokio::join!(
        blast(typing_socket, typing, until),
        blast(sender, |_| Ok(big.frame(None)), until)
    );
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let grown = database_bytes(&env.data_dir).saturating_sub(db_before);
    let log_grown = log_size().saturating_sub(log_before);
    #[allow(clippy::cast_precision_loss)]
    let per_sec = |n: u64| n as f64 / secs;
    Ok(Outcome {
        actions: typed + sends,
        detail: format!(
            "one socket: {} written {:.0}/s, answered {:.0}/s ({}); one socket: 64 KiB {} written {:.0}/s, answered {:.0}/s ({}); database +{:.1} MiB ({:.2} MiB/s), commands.log +{:.1} MiB",
            Typing::NAME,
            per_sec(typed),
            per_sec(typing_replies.total()),
            typing_replies.show(),
            SendMessage::NAME,
            per_sec(sends),
            per_sec(send_replies.total()),
            send_replies.show(),
            mib(grown),
            mib(grown) / secs,
            mib(log_grown)
        ),
        victim_ok: None,
    })
}

// --- i) voiding a verification code ---------------------------------------------------------

async fn code_void(env: &Env, gate: Gate) -> Result<Outcome, String> {
    let registrar = client_from(env, IpAddr::V4(Ipv4Addr::new(127, 0, 3, 9))).await?;
    let email = format!("void-{:08x}@loadgen.invalid", rand::random::<u32>());
    let handle = format!("void_{:08x}", rand::random::<u32>());
    let identity = super::first_identity(&env.creds)?;
    registrar
        .register(
            RegisterParams::new(&email, &handle, "Victim", super::NORMAL_PASSWORD)
                .with_identity(identity),
        )
        .await
        .map_err(|e| e.to_string())?;
    let code = mailed_code(&env.data_dir, &email).await?;
    let right: u32 = code.parse().map_err(|_| "a code that is not a number")?;
    let attacker = client_from(env, attacker_ip(13)).await?;
    let victim = client_from(env, attacker_ip(14)).await?;
    let unknown = format!("nobody-{:08x}@loadgen.invalid", rand::random::<u32>());
    let until = gate.open().await?;
    let wrong = || {
        let guess = (right + 1 + rand::random::<u32>() % 999_998) % 1_000_000;
        VerifyRequest {
            email: Some(email.clone()),
            code: Some(format!("{guess:06}")),
            token: None,
        }
    };
    let wrong_unknown = || VerifyRequest {
        email: Some(unknown.clone()),
        code: Some(format!("{:06}", (right + 1) % 1_000_000)),
        token: None,
    };
    let (known, strange) = tokio::join!(
        hammer::<Verify>(&attacker, wrong, 1, until),
        hammer::<Verify>(&attacker, wrong_unknown, 1, until)
    );
    let verified = victim.verify_code(&email, &code).await;
    let victim_ok = verified.is_ok();
    let outcome = match verified {
        Ok(_) => "accepted".to_owned(),
        Err(e) => format!(
            "REFUSED ({})",
            e.code()
                .map_or_else(|| e.to_string(), |c| c.as_str().to_owned())
        ),
    };
    let same = if known.map().keys().eq(strange.map().keys()) {
        "the same"
    } else {
        "differently"
    };
    Ok(Outcome {
        actions: known.total() + strange.total(),
        detail: format!(
            "wrong codes for an unverified victim from another address: {}; for an unknown email: {} (answered {same}); her right code afterwards: {outcome}",
            known.show(),
            strange.show()
        ),
        victim_ok: Some(victim_ok),
    })
}
