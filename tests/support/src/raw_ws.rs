//! A WebSocket client by hand over raw TCP: the upgrade, masked client
//! frames of any declared length, server frames as they come (for what
//! tokio-tungstenite would refuse to send or hide).

use std::time::{Duration, Instant};

use ferrogram_client::Session;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::app::TestApp;
use crate::ws::FRAME_TIMEOUT;

/// Opens a TCP connection and upgrades it to a WebSocket by hand.
pub async fn raw_upgrade(app: &TestApp) -> TcpStream {
    let mut tcp = TcpStream::connect(app.server.addr).await.unwrap();
    let request = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        app.server.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(FRAME_TIMEOUT, tcp.read(&mut byte))
            .await
            .expect("upgrade answer in time")
            .unwrap();
        assert_eq!(n, 1, "connection closed during the upgrade");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// The header of a masked client frame declaring `len` payload bytes (mask
/// key 0, so the payload goes as it is).
pub fn client_header(first: u8, len: u64) -> Vec<u8> {
    let mut h = vec![first];
    match len {
        0..=125 => h.push(0x80 | len as u8),
        126..=0xffff => {
            h.push(0x80 | 0x7e);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x80 | 0x7f);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = client_header(first, payload.len() as u64);
    frame.extend_from_slice(payload);
    frame
}

/// One server frame: (opcode, payload).
pub async fn read_server_frame<R: AsyncRead + Unpin>(tcp: &mut R) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await.ok()?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            tcp.read_exact(&mut b).await.ok()?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            tcp.read_exact(&mut b).await.ok()?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).ok()?];
    tcp.read_exact(&mut payload).await.ok()?;
    Some((head[0] & 0x0f, payload))
}

/// Reads server frames until the close frame: the text frames before it and
/// the close code. Panics when nothing closes within `within`.
pub async fn raw_until_close<R: AsyncRead + Unpin>(
    tcp: &mut R,
    within: Duration,
) -> (Vec<Value>, u16, String) {
    let deadline = Instant::now() + within;
    let mut texts = Vec::new();
    loop {
        let frame = tokio::time::timeout_at(deadline.into(), read_server_frame(tcp))
            .await
            .unwrap_or_else(|_| panic!("no close within {within:?}; frames so far {texts:?}"));
        let Some((op, payload)) = frame else {
            panic!("connection ended without a close frame; frames {texts:?}")
        };
        match op {
            0x1 => texts.push(serde_json::from_slice(&payload).unwrap()),
            0x8 => {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                let reason = String::from_utf8_lossy(&payload[2..]).into_owned();
                return (texts, code, reason);
            }
            _ => {}
        }
    }
}

pub async fn raw_auth(tcp: &mut TcpStream, session: &Session) {
    let auth = json!({"type": "auth", "token": session.token()}).to_string();
    tcp.write_all(&client_frame(0x81, auth.as_bytes()))
        .await
        .unwrap();
    let (op, payload) = tokio::time::timeout(FRAME_TIMEOUT, read_server_frame(tcp))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(op, 1);
    let ready: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(ready["type"], "ready", "{ready}");
}
