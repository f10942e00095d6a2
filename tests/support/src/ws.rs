//! A WebSocket client of the gateway (`GET /api/v1/ws`) over
//! tokio-tungstenite: JSON frames, commands and their replies, events; and
//! the `message.send` body of a message sealed for a chat's members.

use std::collections::VecDeque;
use std::time::Duration;

use ferrogram_client::Session;
use ferrogram_core::crypto::envelope::seal_payload;
use ferrogram_core::ids::{ChatId, Timestamp};
use ferrogram_core::proto::{EnvelopeHeader, MessagePayload};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::app::TestApp;
use crate::people::Person;

/// How long a test waits for one frame or close.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// A tokio-tungstenite connection to the gateway.
pub type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The gateway's URL on `app`.
pub fn ws_url(app: &TestApp) -> String {
    format!(
        "{}/api/v1/ws",
        app.base_url()
            .replacen("http", "ws", 1)
            .trim_end_matches('/')
    )
}

/// What the client read.
#[derive(Debug)]
pub enum Got {
    Frame(Value),
    Closed(Option<CloseFrame>),
}

pub struct Ws {
    pub stream: Stream,
    pub next_id: u64,
    /// Frames read while waiting for something else (events during a command).
    stash: VecDeque<Value>,
}

impl Ws {
    pub async fn connect(app: &TestApp) -> Ws {
        let (stream, _) = tokio_tungstenite::connect_async(ws_url(app))
            .await
            .expect("websocket connects");
        Ws {
            stream,
            next_id: 1,
            stash: VecDeque::new(),
        }
    }

    /// Connects and authenticates; returns the `ready` frame.
    pub async fn open(app: &TestApp, session: &Session) -> (Ws, Value) {
        let mut ws = Ws::connect(app).await;
        ws.send(json!({"type": "auth", "token": session.token()}))
            .await;
        let ready = ws.frame().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        (ws, ready)
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("frame sent");
    }

    /// The next message from the socket, within `FRAME_TIMEOUT`.
    async fn next_message(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
            .await
            .expect("a frame in time")
    }

    /// The next frame or close, whatever it is.
    pub async fn read(&mut self) -> Got {
        if let Some(frame) = self.stash.pop_front() {
            return Got::Frame(frame);
        }
        loop {
            match self.next_message().await {
                Some(Ok(Message::Text(text))) => {
                    return Got::Frame(serde_json::from_str(&text).expect("JSON frame"))
                }
                Some(Ok(Message::Close(frame))) => return Got::Closed(frame),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(other)) => panic!("unexpected message {other:?}"),
                Some(Err(e)) => panic!("websocket error {e}"),
                None => return Got::Closed(None),
            }
        }
    }

    /// The next text frame, or how the connection ended: the close (code,
    /// reason), an error or its end.
    pub async fn read_or_close(&mut self) -> Result<Value, (Option<CloseCode>, String)> {
        if let Some(frame) = self.stash.pop_front() {
            return Ok(frame);
        }
        loop {
            match self.next_message().await {
                Some(Ok(Message::Text(text))) => {
                    return Ok(serde_json::from_str(&text).expect("JSON frame"))
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err((
                        frame.as_ref().map(|f| f.code),
                        frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    ))
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err((None, e.to_string())),
                None => return Err((None, "ended".into())),
            }
        }
    }

    pub async fn frame(&mut self) -> Value {
        match self.read().await {
            Got::Frame(v) => v,
            Got::Closed(c) => panic!("closed while a frame was expected: {c:?}"),
        }
    }

    /// Reads until the connection closes; returns the frames before and the close.
    pub async fn until_closed(&mut self) -> (Vec<Value>, Option<CloseFrame>) {
        let mut frames = Vec::new();
        loop {
            match self.read().await {
                Got::Frame(v) => frames.push(v),
                Got::Closed(c) => return (frames, c),
            }
        }
    }

    /// Sends a command and waits for its reply; other frames are stashed.
    pub async fn command(&mut self, command: &str, body: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"type": "command", "id": id, "command": command, "body": body}))
            .await;
        let mut others = Vec::new();
        let reply = loop {
            let Some(frame) = self.stream_frame().await else {
                panic!("closed while waiting for the reply to {command}")
            };
            if frame["type"] == "reply" && frame["id"] == id {
                break frame;
            }
            others.push(frame);
        };
        self.stash.extend(others);
        reply
    }

    /// Like `command`, for a command that must succeed: its body.
    pub async fn ok(&mut self, command: &str, body: Value) -> Value {
        let reply = self.command(command, body).await;
        assert!(reply.get("error").is_none(), "{command}: {reply}");
        reply["body"].clone()
    }

    /// The next frame from the socket itself (ignoring the stash).
    pub async fn stream_frame(&mut self) -> Option<Value> {
        loop {
            match self.next_message().await {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).expect("JSON frame"))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                _ => return None,
            }
        }
    }

    /// The next `event` frame (skipping live events), as (chat, seq).
    pub async fn event(&mut self) -> (ChatId, i64, Value) {
        loop {
            let frame = self.frame().await;
            if frame["type"] == "event" {
                let event = frame["event"].clone();
                return (
                    ChatId(event["chat_id"].as_i64().unwrap()),
                    event["seq"].as_i64().unwrap(),
                    event,
                );
            }
            assert_eq!(frame["type"], "live", "{frame}");
        }
    }
}

pub fn assert_closed_with(close: Option<&CloseFrame>, code: CloseCode, reason: &str) {
    let close = close.unwrap_or_else(|| panic!("no close frame (expected {code:?})"));
    assert_eq!(close.code, code, "{close:?}");
    assert!(close.reason.contains(reason), "{close:?}");
}

pub fn error_code(frame: &Value) -> &str {
    frame["error"]["code"].as_str().unwrap_or_default()
}

/// A raw connection with a tiny receive buffer, authenticated, nothing read yet.
pub async fn tight_socket(app: &TestApp, session: &Session) -> Stream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(app.server.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(ws_url(app), MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"type": "auth", "token": session.token()}).to_string(),
    ))
    .await
    .unwrap();
    ws
}

/// A `message.send` body for `chat` from `sender` to `members`.
pub fn seal_for(
    chat: ChatId,
    sender: &Person,
    msg_id: &str,
    text: &str,
    members: &[&Person],
) -> Value {
    let header = EnvelopeHeader {
        chat_id: chat,
        sender: sender.id,
        client_msg_id: msg_id.to_owned(),
        sent_at: Timestamp::now(),
    };
    let recipients: Vec<_> = members
        .iter()
        .map(|p| (p.id, p.identity.public_keys()))
        .collect();
    let envelope = seal_payload(
        &MessagePayload::text(text),
        header,
        &sender.identity,
        &recipients,
        &mut rand::rng(),
    )
    .unwrap();
    json!({"chat_id": chat, "client_msg_id": msg_id, "envelope": envelope})
}
