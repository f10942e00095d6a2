//! The WebSocket gateway against a hostile client (issue 11): frame sizes
//! judged on the header, caps on open sockets, outbound memory bounded in
//! bytes, the size of one reply. The real server on port 0, driven over raw
//! TCP (hand-built frames) or tokio-tungstenite; accounts through the client
//! library.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrogram_client::Session;
use ferrogram_core::ids::{ChatId, Timestamp};
use ferrogram_test_support::raw_ws::{
    client_frame, client_header, raw_auth, raw_until_close, raw_upgrade, read_server_frame,
};
use ferrogram_test_support::ws::{seal_for, tight_socket, ws_url, Stream, Ws, FRAME_TIMEOUT};
use ferrogram_test_support::{person, spawn_app_with, Person, TestApp};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Streams `total` bytes of junk in chunks, slowly, until the server stops
/// taking them; returns how many were written.
fn stream_junk(
    mut tcp: tokio::net::tcp::OwnedWriteHalf,
    total: usize,
    sent: Arc<std::sync::atomic::AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let chunk = vec![b'a'; 16 * 1024];
        while sent.load(std::sync::atomic::Ordering::Relaxed) < total {
            if tcp.write_all(&chunk).await.is_err() {
                break;
            }
            sent.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

/// A huge declared frame is refused at once: an error frame, then 1009.
async fn assert_refused_as_too_large(mut tcp: TcpStream, header: Vec<u8>) -> Duration {
    tcp.write_all(&header).await.unwrap();
    let (mut read, write) = tcp.into_split();
    // Several MiB of junk, sent slowly: before the fix the server buffered it all.
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let junk = stream_junk(write, 8 * 1024 * 1024, sent.clone());
    let started = Instant::now();
    let (texts, code, reason) = raw_until_close(&mut read, Duration::from_secs(5)).await;
    let took = started.elapsed();
    junk.abort();
    eprintln!(
        "closed with {code} {reason:?} after {took:?}, {} KiB of payload sent",
        sent.load(std::sync::atomic::Ordering::Relaxed) / 1024
    );
    assert_eq!(code, 1009, "{reason}");
    assert_eq!(reason, "frame too large");
    // refused on the header: long before the payload (8 MiB in ~3 s) is in
    assert!(took < Duration::from_secs(2), "refused after {took:?}");
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(texts[0]["error"]["code"], "frame_too_large", "{texts:?}");
    took
}

/// A normal user still connects and exchanges a message.
async fn a_message_goes_through(app: &TestApp, alice: &Person, bob: &Person) {
    let alice_session = app.login(&alice.user).await;
    let bob_session = app.login(&bob.user).await;
    let (mut a, _) = Ws::open(app, &alice_session).await;
    let (mut b, _) = Ws::open(app, &bob_session).await;
    let chat = a.ok("chat.create_direct", json!({"user_id": bob.id})).await;
    let chat_id = ChatId(chat["id"].as_i64().unwrap());
    let tag = format!("hello-{}", Timestamp::now());
    a.ok(
        "message.send",
        seal_for(chat_id, alice, &tag, "hello", &[alice, bob]),
    )
    .await;
    let deadline = Instant::now() + FRAME_TIMEOUT;
    loop {
        let frame = b.frame().await;
        if frame["type"] == "event" && frame["event"]["body"]["client_msg_id"] == tag.as_str() {
            break;
        }
        assert!(Instant::now() < deadline, "the message never arrived");
    }
}

// ---- point 1: frame sizes judged on the header ----

fn small_frames(c: &mut ferrogram_server::config::Config) {
    c.limits.max_frame_bytes = 64 * 1024;
    c.limits.max_body_bytes = 64 * 1024;
    c.websocket.auth_timeout_secs = 30;
}

#[tokio::test]
async fn a_frame_declaring_a_huge_length_is_refused_on_its_header_before_auth() {
    let app = spawn_app_with(small_frames).await;
    for (what, header) in [
        ("2^62 text", client_header(0x81, 1 << 62)),
        ("limit + 1 text", client_header(0x81, 64 * 1024 + 1)),
        ("2^40 binary", client_header(0x82, 1 << 40)),
    ] {
        let took = assert_refused_as_too_large(raw_upgrade(&app).await, header).await;
        eprintln!("{what}: refused in {took:?}");
    }
    let alice = person(&app, "hugea", 0).await;
    let bob = person(&app, "hugeb", 1).await;
    a_message_goes_through(&app, &alice, &bob).await;
}

/// After refusing a frame the server reads no more of the connection: a
/// client that keeps pushing the frame's payload is held up by TCP flow
/// control (a few MiB of socket buffers), not drained at loopback speed
/// until the connection is cut.
#[tokio::test]
async fn after_a_refused_frame_the_server_reads_no_more_of_the_connection() {
    let app = spawn_app_with(small_frames).await;
    let mut tcp = raw_upgrade(&app).await;
    tcp.write_all(&client_header(0x81, 1 << 62)).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    let (_, code, _) = raw_until_close(&mut read, Duration::from_secs(5)).await;
    assert_eq!(code, 1009);
    let chunk = vec![b'x'; 64 * 1024];
    let mut accepted = 0usize;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until && accepted < 1024 * 1024 * 1024 {
        match tokio::time::timeout(Duration::from_millis(500), write.write_all(&chunk)).await {
            Ok(Ok(())) => accepted += chunk.len(),
            // Blocked (nobody reads) or cut: either way the server took no more.
            _ => break,
        }
    }
    eprintln!("{} KiB taken after the close", accepted / 1024);
    assert!(
        accepted < 32 * 1024 * 1024,
        "the server went on reading: {} MiB taken after the close",
        accepted / (1024 * 1024)
    );
}

#[tokio::test]
async fn a_frame_declaring_a_huge_length_is_refused_on_its_header_after_auth() {
    let app = spawn_app_with(small_frames).await;
    let alice = person(&app, "hugeauth", 0).await;
    let session = app.login(&alice.user).await;
    let mut tcp = raw_upgrade(&app).await;
    raw_auth(&mut tcp, &session).await;
    let took = assert_refused_as_too_large(tcp, client_header(0x81, 1 << 62)).await;
    eprintln!("after auth: refused in {took:?}");
}

#[tokio::test]
async fn a_fragmented_message_over_the_limit_is_refused_on_the_header_that_exceeds_it() {
    let app = spawn_app_with(small_frames).await;
    let alice = person(&app, "fraga", 0).await;
    let session = app.login(&alice.user).await;
    let mut tcp = raw_upgrade(&app).await;
    raw_auth(&mut tcp, &session).await;
    // 40 KiB in a first fragment (within the limit), then a continuation
    // declaring another 40 KiB: together over 64 KiB.
    let first = vec![b' '; 40 * 1024];
    tcp.write_all(&client_frame(0x01, &first)).await.unwrap();
    let took = assert_refused_as_too_large(tcp, client_header(0x00, 40 * 1024)).await;
    eprintln!("fragmented: refused in {took:?}");

    // Within the limit, a fragmented command still works.
    let mut tcp = raw_upgrade(&app).await;
    raw_auth(&mut tcp, &session).await;
    let text = json!({"type": "command", "id": 9, "command": "me.get"}).to_string();
    let (a, b) = text.as_bytes().split_at(10);
    tcp.write_all(&client_frame(0x01, a)).await.unwrap();
    tcp.write_all(&client_frame(0x80, b)).await.unwrap();
    let (op, payload) = tokio::time::timeout(FRAME_TIMEOUT, read_server_frame(&mut tcp))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(op, 1);
    let reply: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(reply["id"], 9, "{reply}");
    assert_eq!(reply["body"]["id"], alice.id.0, "{reply}");
}

// ---- frames per second: one socket cannot take the CPU ----

/// A client that sends frames faster than `websocket.max_frames_per_sec`
/// is read more slowly (nothing refused): 600 pipelined commands at 500
/// frames/s after a burst of 100 take at least (600 - 100) / 500 = 1 s to be
/// answered, and every one of them is answered.
#[tokio::test]
async fn a_client_sending_frames_faster_than_the_rate_is_read_more_slowly() {
    const COMMANDS: usize = 600;
    let app = spawn_app_with(|c| {
        c.websocket.max_frames_per_sec = 500;
        c.websocket.frame_burst = 100;
    })
    .await;
    let alice = person(&app, "ratea", 0).await;
    let session = app.login(&alice.user).await;
    let mut tcp = raw_upgrade(&app).await;
    raw_auth(&mut tcp, &session).await;
    let mut frames = Vec::new();
    for id in 0..COMMANDS {
        let text = json!({"type": "command", "id": id, "command": "server.info"}).to_string();
        frames.extend(client_frame(0x81, text.as_bytes()));
    }
    let started = Instant::now();
    let (mut read, mut write) = tcp.into_split();
    let writer = tokio::spawn(async move {
        write.write_all(&frames).await.unwrap();
        write
    });
    let mut replies = 0;
    while replies < COMMANDS {
        let (op, payload) =
            tokio::time::timeout(Duration::from_secs(20), read_server_frame(&mut read))
                .await
                .expect("a reply in time")
                .expect("the connection stays open");
        if op != 1 {
            continue;
        }
        let frame: Value = serde_json::from_slice(&payload).unwrap();
        if frame["type"] == "reply" {
            assert!(frame.get("error").is_none(), "{frame}");
            replies += 1;
        }
    }
    let took = started.elapsed();
    eprintln!("{COMMANDS} pipelined commands answered in {took:?}");
    assert!(
        took >= Duration::from_millis(950),
        "read faster than the frame rate allows: {took:?}"
    );
    drop(writer.await.unwrap());
}

// ---- point 3: caps on open sockets ----

/// Reads the refusal of an `auth` over a cap: the error frame, then 1008.
async fn assert_refused_at_auth(app: &TestApp, session: &Session, what: &str) {
    let mut ws = Ws::connect(app).await;
    ws.send(json!({"type": "auth", "token": session.token()}))
        .await;
    let error = ws.frame().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["error"]["code"], "too_many_connections", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains(what), "{message}");
    let (code, reason) = ws
        .read_or_close()
        .await
        .expect_err("closed after the error");
    assert_eq!(code, Some(CloseCode::Policy), "{reason}");
    assert_eq!(reason, "too many connections");
}

/// Closes a socket and waits for the server's answer: its places are free then.
async fn close(mut ws: Ws) {
    ws.stream.close(None).await.unwrap();
    loop {
        match ws.read_or_close().await {
            Ok(_) => {}
            Err((code, _)) => {
                assert_eq!(code, Some(CloseCode::Normal));
                return;
            }
        }
    }
}

#[tokio::test]
async fn sockets_over_the_session_user_and_ip_caps_are_refused_and_closing_frees_a_place() {
    let app = spawn_app_with(|c| {
        c.limits.max_sockets_per_session = 2;
        c.limits.max_sockets_per_user = 3;
        c.limits.max_sockets_per_ip = 5;
    })
    .await;
    let alice = person(&app, "capa", 0).await;
    let bob = person(&app, "capb", 1).await;
    let first = app.login(&alice.user).await;
    let second = app.login(&alice.user).await;

    // per session: 2
    let (a1, _) = Ws::open(&app, &first).await;
    let (_a2, _) = Ws::open(&app, &first).await;
    assert_refused_at_auth(&app, &first, "login session").await;
    // per account: 3 (the second session has room, the account not)
    let (_b1, _) = Ws::open(&app, &second).await;
    assert_refused_at_auth(&app, &second, "account").await;
    // closing one gives its place back, at once
    close(a1).await;
    let (_a3, _) = Ws::open(&app, &first).await;
    assert_refused_at_auth(&app, &first, "account").await;

    // per IP: 5 open sockets (3 of alice, 2 not yet authenticated), then 429
    let bob_session = app.login(&bob.user).await;
    let pending = Ws::connect(&app).await;
    let (mut b, _) = Ws::open(&app, &bob_session).await;
    let refused = tokio_tungstenite::connect_async(ws_url(&app))
        .await
        .expect_err("over the IP cap");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP refusal, got {refused:?}")
    };
    assert_eq!(response.status().as_u16(), 429);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default())
        .expect("a JSON error");
    assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
    // the sockets that are open work as usual
    b.ok("me.get", json!({})).await;
    // a socket closing before it authenticated frees its place too
    close(pending).await;
    let (_b2, _) = Ws::open(&app, &bob_session).await;
}

// ---- point 4: outbound memory in bytes ----

/// Waits until the server's outbound count stops moving (the server holds
/// what it will hold), at most `within`.
async fn settled_total(app: &TestApp, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    let mut last = app.server.outbound.total();
    let mut still_since = Instant::now();
    while still_since.elapsed() < Duration::from_millis(800) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = app.server.outbound.total();
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
    last
}

/// A chat of `alice` and `bob` with `n` messages of about `size` bytes.
async fn chat_with_messages(
    app: &TestApp,
    alice: &Person,
    bob: &Person,
    n: usize,
    size: usize,
) -> ChatId {
    let session = app.login(&alice.user).await;
    let (mut ws, _) = Ws::open(app, &session).await;
    let chat = ws
        .ok("chat.create_direct", json!({"user_id": bob.id}))
        .await;
    let chat_id = ChatId(chat["id"].as_i64().unwrap());
    let text = "h".repeat(size);
    for i in 0..n {
        ws.ok(
            "message.send",
            seal_for(chat_id, alice, &format!("m{i}"), &text, &[alice, bob]),
        )
        .await;
    }
    chat_id
}

#[tokio::test]
async fn pipelined_history_requests_that_are_never_read_hold_at_most_the_budget() {
    const BUDGET: usize = 2 * 1024 * 1024;
    const REQUESTS: u64 = 400;
    let app = spawn_app_with(|c| {
        c.websocket.outbound_queue_bytes = BUDGET;
        c.websocket.client_timeout_secs = 120;
        c.limits.max_frame_bytes = 256 * 1024;
        c.limits.max_body_bytes = 256 * 1024;
    })
    .await;
    let alice = person(&app, "pipeha", 0).await;
    let bob = person(&app, "pipehb", 1).await;
    // history pages of 5 messages of 30 KiB: replies of ~210 KB each
    let chat_id = chat_with_messages(&app, &alice, &bob, 5, 30 * 1024).await;
    let session = app.login(&bob.user).await;
    let mut attacker = tight_socket(&app, &session).await;
    for id in 1..=REQUESTS {
        attacker
            .send(Message::text(
                json!({"type": "command", "id": id, "command": "message.history",
                    "body": {"chat_id": chat_id, "limit": 5}})
                .to_string(),
            ))
            .await
            .unwrap();
    }
    // Meanwhile a normal client connects and exchanges a message.
    let carol = person(&app, "pipehc", 0).await;
    let dave = person(&app, "pipehd", 1).await;
    a_message_goes_through(&app, &carol, &dave).await;

    let held = settled_total(&app, Duration::from_secs(30)).await;
    let peak = app.server.outbound.peak_connection();
    eprintln!("pipelined history: holds {held} bytes, peak of one socket {peak} (budget {BUDGET})");
    assert!(
        peak > BUDGET / 4,
        "the replies were not held at all? peak {peak}"
    );
    assert!(
        peak <= BUDGET,
        "one socket held {peak} bytes, over its budget {BUDGET}"
    );

    // Replies are never a reason to close: reading now, every one arrives.
    let mut replies = 0;
    while replies < REQUESTS {
        let next = tokio::time::timeout(FRAME_TIMEOUT, attacker.next())
            .await
            .expect("replies keep coming");
        match next {
            Some(Ok(Message::Text(text))) => {
                if text.as_str().starts_with(r#"{"type":"reply""#) {
                    assert!(!text.as_str().contains(r#""error""#), "{}", &text[..200]);
                    replies += 1;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("the connection ended after {replies} replies: {other:?}"),
        }
    }
    assert!(app.server.outbound.peak_connection() <= BUDGET);
}

/// Sends messages of `size` bytes into `chat` until `done` says so (at most
/// `max`); returns how many were sent.
async fn send_until(
    ws: &mut Ws,
    chat_id: ChatId,
    from: &Person,
    to: &[&Person],
    size: usize,
    max: usize,
    mut done: impl FnMut(usize) -> bool,
) -> usize {
    let text = "x".repeat(size);
    for sent in 1..=max {
        let tag = format!("flood-{}-{sent}", Timestamp::now());
        ws.ok("message.send", seal_for(chat_id, from, &tag, &text, to))
            .await;
        if done(sent) {
            return sent;
        }
    }
    max
}

/// Reads a socket that did not read until it ends: (events read, close code).
async fn drain(ws: &mut Stream) -> (usize, Option<CloseCode>) {
    let mut events = 0;
    while let Ok(Some(next)) = tokio::time::timeout(FRAME_TIMEOUT, ws.next()).await {
        match next {
            Ok(Message::Text(_)) => events += 1,
            Ok(Message::Close(frame)) => return (events, frame.map(|f| f.code)),
            Ok(_) => {}
            Err(_) => return (events, None),
        }
    }
    (events, None)
}

#[tokio::test]
async fn sockets_that_do_not_read_large_messages_are_closed_once_over_their_byte_budget() {
    const BUDGET: usize = 256 * 1024;
    const SOCKETS: usize = 4;
    let app = spawn_app_with(|c| {
        // The frame count alone (256) would hold 14 MB per socket here.
        c.websocket.outbound_queue_bytes = BUDGET;
        c.websocket.client_timeout_secs = 120;
        c.limits.max_frame_bytes = 256 * 1024;
        c.limits.max_body_bytes = 256 * 1024;
    })
    .await;
    let alice = person(&app, "slowba", 0).await;
    let bob = person(&app, "slowbb", 1).await;
    let alice_session = app.login(&alice.user).await;
    let bob_session = app.login(&bob.user).await;
    let (mut alice_ws, _) = Ws::open(&app, &alice_session).await;
    let chat = alice_ws
        .ok("chat.create_direct", json!({"user_id": bob.id}))
        .await;
    let chat_id = ChatId(chat["id"].as_i64().unwrap());
    let mut sockets = Vec::new();
    for _ in 0..SOCKETS {
        sockets.push(tight_socket(&app, &bob_session).await);
    }
    let user_of = app.server.outbound.clone();
    // every socket has been served (its ready frame taken) before the flood
    let deadline = Instant::now() + FRAME_TIMEOUT;
    while user_of.total() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = send_until(
        &mut alice_ws,
        chat_id,
        &alice,
        &[&alice, &bob],
        40 * 1024,
        200,
        |sent| sent >= 120,
    )
    .await;
    let peak = app.server.outbound.peak_connection();
    eprintln!("slow sockets: {sent} messages, peak of one socket {peak} (budget {BUDGET})");
    // an event frame is ~56 KB: a socket never holds more than its budget
    assert!(peak <= BUDGET, "peak {peak}");
    for ws in &mut sockets {
        let (events, code) = drain(ws).await;
        assert!(events < sent, "{events} of {sent} read: not closed");
        if let Some(code) = code {
            assert_eq!(code, CloseCode::Again);
        }
    }
    // The server still serves others.
    let carol = person(&app, "slowbc", 0).await;
    let dave = person(&app, "slowbd", 1).await;
    a_message_goes_through(&app, &carol, &dave).await;
}

#[tokio::test]
async fn the_servers_total_budget_closes_sockets_that_do_not_read_and_spares_readers() {
    const TOTAL: usize = 512 * 1024;
    const SOCKETS: usize = 6;
    let app = spawn_app_with(|c| {
        // each socket alone may hold 4 MiB; all together only 512 KiB
        c.websocket.outbound_queue_bytes = 4 * 1024 * 1024;
        c.websocket.outbound_total_bytes = TOTAL;
        c.websocket.client_timeout_secs = 120;
        c.limits.max_frame_bytes = 256 * 1024;
        c.limits.max_body_bytes = 256 * 1024;
    })
    .await;
    let alice = person(&app, "totala", 0).await;
    let bob = person(&app, "totalb", 1).await;
    let alice_session = app.login(&alice.user).await;
    let bob_session = app.login(&bob.user).await;
    let (mut alice_ws, _) = Ws::open(&app, &alice_session).await;
    // a second socket of alice reads every event: it is never closed
    let (mut reader, _) = Ws::open(&app, &alice_session).await;
    let chat = alice_ws
        .ok("chat.create_direct", json!({"user_id": bob.id}))
        .await;
    let chat_id = ChatId(chat["id"].as_i64().unwrap());
    let mut sockets = Vec::new();
    for _ in 0..SOCKETS {
        sockets.push(tight_socket(&app, &bob_session).await);
    }
    let reading = tokio::spawn(async move {
        let mut events = 0usize;
        loop {
            match reader.read_or_close().await {
                Ok(frame) if frame["type"] == "event" => {
                    events += 1;
                    if frame["event"]["body"]["client_msg_id"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("-last"))
                    {
                        return events;
                    }
                }
                Ok(_) => {}
                Err(close) => panic!("the reading socket was closed: {close:?}"),
            }
        }
    });
    let sent = send_until(
        &mut alice_ws,
        chat_id,
        &alice,
        &[&alice, &bob],
        40 * 1024,
        80,
        |_| false,
    )
    .await;
    let tag = "marker-last";
    alice_ws
        .ok(
            "message.send",
            seal_for(chat_id, &alice, tag, "end", &[&alice, &bob]),
        )
        .await;
    let read = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("the reader got everything")
        .unwrap();
    assert!(read > sent, "reader: {read} of {sent} + created + marker");
    let peak = app.server.outbound.peak_total();
    eprintln!("total budget: {sent} messages, server peak {peak} (total {TOTAL})");
    // over the total by at most one frame per socket (a socket with nothing
    // waiting still gets its event)
    assert!(peak <= TOTAL + (SOCKETS + 2) * 64 * 1024, "peak {peak}");
    for ws in &mut sockets {
        let (events, code) = drain(ws).await;
        assert!(events < sent, "{events} of {sent} read: not closed");
        if let Some(code) = code {
            assert_eq!(code, CloseCode::Again);
        }
    }
}

// ---- one reply: limits.max_reply_bytes ----

#[tokio::test]
async fn a_reply_over_max_reply_bytes_becomes_reply_too_large_and_the_socket_stays() {
    const CAP: usize = 300;
    let app = spawn_app_with(|c| c.limits.max_reply_bytes = CAP).await;
    let alice = person(&app, "bigreply", 0).await;
    let session = app.login(&alice.user).await;
    // what me.get answers is larger than the cap (it carries the public keys)
    let me = serde_json::to_string(&session.me().await.unwrap()).unwrap();
    assert!(me.len() > CAP, "{}", me.len());
    let (mut ws, _) = Ws::open(&app, &session).await;
    let reply = ws.command("me.get", json!({})).await;
    assert_eq!(reply["error"]["code"], "reply_too_large", "{reply}");
    assert!(reply.get("body").is_none(), "{reply}");
    // a small reply on the same socket still goes through
    let small = ws.ok("presence.get", json!({"user_ids": []})).await;
    assert!(small["users"].as_array().unwrap().is_empty(), "{small}");
}
