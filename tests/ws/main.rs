//! End-to-end tests of the WebSocket gateway (`GET /api/v1/ws`): the real
//! server on port 0, driven over raw WebSocket frames (tokio-tungstenite),
//! with accounts made through the client library like the API tests do.
//! The gateway against a hostile client (frame sizes, socket caps, memory
//! budgets, reply sizes): `limits`.

mod limits;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrogram_core::ids::{ChatId, UserId};
use ferrogram_test_support::ws::{
    assert_closed_with, error_code, seal_for, tight_socket, ws_url, Got, Ws, FRAME_TIMEOUT,
};
use ferrogram_test_support::{
    bench_person, open_to_groups, person, spawn_app_with, Person, TestApp,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

/// The server for these tests: quick timers, small queues.
async fn gateway_app() -> TestApp {
    spawn_app_with(|c| {
        c.websocket.auth_timeout_secs = 2;
        c.websocket.heartbeat_interval_secs = 1;
        c.websocket.client_timeout_secs = 30;
        c.websocket.max_invalid_frames = 20;
        c.websocket.outbound_queue = 64;
    })
    .await
}

// ---- authentication ----

#[tokio::test]
async fn auth_must_be_the_first_frame_and_a_valid_token() {
    let app = gateway_app().await;
    let alice = person(&app, "wsauth", 0).await;
    let session = app.login(&alice.user).await;

    // a command before auth: an error frame, then a policy close
    let mut ws = Ws::connect(&app).await;
    ws.send(json!({"type": "command", "id": 1, "command": "me.get"}))
        .await;
    let (frames, close) = ws.until_closed().await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "error");
    assert_eq!(error_code(&frames[0]), "unauthorized");
    assert_closed_with(close.as_ref(), CloseCode::Policy, "authentication failed");

    // not JSON before auth
    let mut ws = Ws::connect(&app).await;
    ws.send_text("hello?").await;
    let (frames, close) = ws.until_closed().await;
    assert_eq!(error_code(&frames[0]), "invalid_frame");
    assert_closed_with(close.as_ref(), CloseCode::Policy, "authentication failed");

    // a wrong token
    let mut ws = Ws::connect(&app).await;
    ws.send(json!({"type": "auth", "token": "f".repeat(64)}))
        .await;
    let (frames, close) = ws.until_closed().await;
    assert_eq!(error_code(&frames[0]), "unauthorized");
    assert_closed_with(close.as_ref(), CloseCode::Policy, "authentication failed");

    // the right token: ready, with who we are
    let (mut ws, ready) = Ws::open(&app, &session).await;
    assert_eq!(ready["user_id"], alice.id.0);
    assert_eq!(ready["session_id"], session.id().0);
    assert!(ready["server_time"].as_i64().unwrap() > 0);
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.frame().await["type"], "pong");
    // a second auth is refused but harmless
    ws.send(json!({"type": "auth", "token": session.token()}))
        .await;
    assert_eq!(error_code(&ws.frame().await), "invalid_frame");
    assert_eq!(ws.ok("me.get", json!({})).await["id"], alice.id.0);
}

#[tokio::test]
async fn silence_after_connecting_is_closed_after_the_auth_timeout() {
    let app = gateway_app().await;
    let started = Instant::now();
    let mut ws = Ws::connect(&app).await;
    let (frames, close) = ws.until_closed().await;
    let waited = started.elapsed();
    assert_eq!(error_code(&frames[0]), "unauthorized");
    assert_closed_with(close.as_ref(), CloseCode::Policy, "auth timeout");
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_token_in_the_url_is_refused() {
    let app = gateway_app().await;
    let alice = person(&app, "wsurl", 0).await;
    let session = app.login(&alice.user).await;
    let url = format!("{}?token={}", ws_url(&app), session.token());
    match tokio_tungstenite::connect_async(url).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400);
            let body = String::from_utf8(response.into_body().unwrap_or_default()).unwrap();
            assert!(body.contains("bad_request"), "{body}");
            assert!(!body.contains(session.token()), "{body}");
        }
        other => panic!("expected an HTTP 400, got {:?}", other.map(|_| ())),
    }
    // The token itself was not used: the session has no socket, and a plain
    // GET without an upgrade is refused the same way.
    let plain = reqwest::get(ws_url(&app).replacen("ws", "http", 1))
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
}

// ---- commands ----

#[tokio::test]
async fn commands_over_the_socket_answer_exactly_like_rest() {
    let app = gateway_app().await;
    let alice = person(&app, "wscmd", 0).await;
    let session = app.login(&alice.user).await;
    let (mut ws, _) = Ws::open(&app, &session).await;
    let http = reqwest::Client::new();
    let rest = |path: &str| {
        http.get(format!("{}/api/v1{path}", app.base_url()))
            .bearer_auth(session.token())
    };

    // success: the same body
    let over_rest: Value = rest("/me").send().await.unwrap().json().await.unwrap();
    assert_eq!(ws.ok("me.get", json!({})).await, over_rest);
    let over_rest: Value = rest(&format!("/users/{}", alice.user.handle))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ws.ok("user.get", json!({"handle": alice.user.handle}))
            .await,
        over_rest
    );

    // failure: the same error
    let response = rest("/users/nobody_here").send().await.unwrap();
    assert_eq!(response.status(), 404);
    let over_rest: Value = response.json().await.unwrap();
    let reply = ws
        .command("user.get", json!({"handle": "nobody_here"}))
        .await;
    assert_eq!(reply["error"], over_rest["error"]);
    assert!(reply.get("body").is_none());

    // what REST cannot even express
    let reply = ws.command("no.such_command", json!({})).await;
    assert_eq!(error_code(&reply), "unknown_command");
    let reply = ws.command("user.get", json!({"handle": 5})).await;
    assert_eq!(error_code(&reply), "bad_request");

    // every command went through the one dispatch: the command log has them,
    // with the socket's session, and never the token
    // (written by a background thread: wait for the lines)
    let deadline = Instant::now() + Duration::from_secs(10);
    let (log, over_ws) = loop {
        let log = std::fs::read_to_string(app.dir.path().join("commands.log")).unwrap_or_default();
        let found: Vec<Value> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["command"] == "user.get" && e["outcome"] == "user_not_found")
            .collect();
        if found.len() >= 2 || Instant::now() > deadline {
            break (log, found);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!log.contains(session.token()));
    assert_eq!(
        over_ws.len(),
        2,
        "one over REST, one over the socket: {log}"
    );
    assert!(over_ws.iter().all(|e| e["session_id"] == session.id().0));
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_server_stays_up() {
    let app = gateway_app().await;
    let alice = person(&app, "wsbad", 0).await;
    let session = app.login(&alice.user).await;
    let (mut ws, _) = Ws::open(&app, &session).await;

    let bad: Vec<Message> = vec![
        Message::text("not json"),
        Message::text("{\"type\":\"launch_missiles\"}"),
        Message::text("[1,2,3]"),
        Message::text("{\"type\":\"command\",\"id\":\"seven\",\"command\":\"me.get\"}"),
        Message::text("{\"type\":\"command\",\"id\":1}"),
        Message::text("{\"type\":\"resume\",\"positions\":{}}"),
        Message::text("{\"type\":\"auth\",\"token\":7}"),
        Message::binary(vec![0u8, 159, 146, 150]),
    ];
    // Many of them, but never the limit (20) in a row: a valid frame in between.
    for round in 0..5 {
        for frame in &bad {
            ws.stream.send(frame.clone()).await.unwrap();
            let error = ws.frame().await;
            assert_eq!(error["type"], "error", "round {round}: {error}");
            assert_eq!(error_code(&error), "invalid_frame", "{error}");
        }
        ws.send(json!({"type": "ping"})).await;
        assert_eq!(ws.frame().await["type"], "pong");
    }
    // an unknown command is a normal reply, not a frame error
    let reply = ws.command("launch.missiles", json!({})).await;
    assert_eq!(error_code(&reply), "unknown_command");
    // after all that, a normal command still works on the same connection
    assert_eq!(ws.ok("me.get", json!({})).await["id"], alice.id.0);

    // the limit in a row closes the connection, with a reason
    for _ in 0..20 {
        ws.send_text("garbage").await;
    }
    let (frames, close) = ws.until_closed().await;
    assert_eq!(
        frames.len(),
        20,
        "19 error frames and the last before closing"
    );
    assert!(frames.iter().all(|f| error_code(f) == "invalid_frame"));
    assert_closed_with(close.as_ref(), CloseCode::Policy, "too many invalid frames");

    // an oversized frame: frame_too_large, then close 1009
    let (mut ws, _) = Ws::open(&app, &session).await;
    let big = json!({"type": "command", "id": 1, "command": "me.get",
                     "body": {"pad": "x".repeat(app.config.limits.max_frame_bytes)}});
    ws.send(big).await;
    let (frames, close) = ws.until_closed().await;
    assert_eq!(error_code(&frames[0]), "frame_too_large");
    assert_closed_with(close.as_ref(), CloseCode::Size, "frame too large");

    // the server is up and a new connection works
    let (mut ws, _) = Ws::open(&app, &session).await;
    assert_eq!(ws.ok("me.get", json!({})).await["id"], alice.id.0);
    assert_eq!(
        app.client.fetch_server_info().await.unwrap().name,
        "ferrogram"
    );
}

// ---- closing from the server side ----

#[tokio::test]
async fn revoking_a_session_or_deleting_the_account_closes_its_sockets_at_once() {
    let app = gateway_app().await;
    let alice = person(&app, "wsrevoke", 0).await;
    let laptop = app.login(&alice.user).await;
    let phone = app.login(&alice.user).await;
    let (mut laptop_ws, _) = Ws::open(&app, &laptop).await;
    let (mut phone_ws, _) = Ws::open(&app, &phone).await;

    // the phone revokes the laptop over REST
    let started = Instant::now();
    let response = reqwest::Client::new()
        .delete(format!(
            "{}/api/v1/sessions/{}",
            app.base_url(),
            laptop.id().0
        ))
        .bearer_auth(phone.token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (frames, close) = laptop_ws.until_closed().await;
    let took = started.elapsed();
    assert_eq!(error_code(&frames[0]), "unauthorized");
    assert_closed_with(close.as_ref(), CloseCode::Policy, "session ended");
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
    // the other session's socket is untouched
    assert_eq!(phone_ws.ok("me.get", json!({})).await["id"], alice.id.0);

    // deleting the account closes the rest
    phone.delete_account(&alice.user.password).await.unwrap();
    let (_, close) = phone_ws.until_closed().await;
    assert_closed_with(close.as_ref(), CloseCode::Policy, "account deleted");
}

#[tokio::test]
async fn a_client_that_pipelines_without_reading_is_paced_not_buffered() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let app = spawn_app_with(|c| {
        c.websocket.outbound_queue = 16;
        c.websocket.client_timeout_secs = 60;
        // Pacing by the outbound queue, not by the frame rate (at 200 frames
        // a second the pongs would take minutes to fill the socket buffers).
        c.websocket.max_frames_per_sec = 1_000_000;
        c.websocket.frame_burst = 1_000_000;
    })
    .await;
    let alice = person(&app, "wspace", 0).await;
    let session = app.login(&alice.user).await;
    let (mut sink, mut stream) = tight_socket(&app, &session).await.split();

    // The client writes pings as fast as it can and never reads.
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (sent, stop) = (sent.clone(), stop.clone());
        async move {
            let ping = Message::text(r#"{"type":"ping"}"#);
            while !stop.load(Ordering::Relaxed) && sent.load(Ordering::Relaxed) < 3_000_000 {
                sink.send(ping.clone())
                    .await
                    .expect("the connection stays open");
                sent.fetch_add(1, Ordering::Relaxed);
            }
            sink
        }
    });
    let rss_before = rss_bytes();
    // Soon the server stops reading: the writer makes no more progress.
    let started = Instant::now();
    let mut last = 0;
    let mut still_since = Instant::now();
    while still_since.elapsed() < Duration::from_secs(1) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server kept reading a client that does not read ({} pings)",
            sent.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = sent.load(Ordering::Relaxed);
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
    let rss_paused = rss_bytes();
    stop.store(true, Ordering::Relaxed);
    let blocked_at = sent.load(Ordering::Relaxed);
    assert!(blocked_at < 3_000_000, "never blocked");

    // Reading again, the client gets every answer, once, and stays connected.
    let mut pongs = 0usize;
    let mut ready = 0usize;
    let mut writer = Some(writer);
    let mut total = None;
    while total != Some(pongs) {
        let next = tokio::time::timeout(FRAME_TIMEOUT, stream.next())
            .await
            .expect("answers keep coming");
        match next {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                match frame["type"].as_str() {
                    Some("pong") => pongs += 1,
                    Some("ready") => ready += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("the connection ended: {other:?}"),
        }
        if total.is_none()
            && writer
                .as_ref()
                .is_some_and(tokio::task::JoinHandle::is_finished)
        {
            let sink = writer.take().unwrap().await.unwrap();
            total = Some(sent.load(Ordering::Relaxed));
            let mut ws = sink.reunite(stream).unwrap();
            // prove the connection is healthy: a command after the flood
            ws.send(Message::text(
                json!({"type": "command", "id": 1, "command": "me.get"}).to_string(),
            ))
            .await
            .unwrap();
            stream = ws.split().1;
            // (the sink half is dropped; the reply is read below)
        }
    }
    assert_eq!(ready, 1);
    let reply = loop {
        let next = tokio::time::timeout(FRAME_TIMEOUT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = next {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
    };
    assert_eq!(reply["body"]["id"], alice.id.0, "{reply}");
    eprintln!(
        "pipelining: blocked after {blocked_at} pings in {:?}; {pongs} pongs read; \
         RSS {} -> {} KiB while blocked",
        started.elapsed(),
        rss_before / 1024,
        rss_paused / 1024
    );
    let grown = rss_paused.saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024 * 1024,
        "memory grew by {} KiB for a client that does not read",
        grown / 1024
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_its_events_is_disconnected_with_a_reason() {
    let app = spawn_app_with(|c| {
        c.websocket.outbound_queue = 16;
        c.websocket.client_timeout_secs = 60;
        c.limits.max_frame_bytes = 256 * 1024;
        c.limits.max_body_bytes = 256 * 1024;
    })
    .await;
    let alice = person(&app, "wsslowa", 0).await;
    let bob = person(&app, "wsslowb", 1).await;
    let alice_session = app.login(&alice.user).await;
    let bob_session = app.login(&bob.user).await;
    let (mut alice_ws, _) = Ws::open(&app, &alice_session).await;
    // Bob connects with a tiny receive buffer and then never reads.
    let mut bob_ws = tight_socket(&app, &bob_session).await;
    let bob_online = |reply: &Value| reply["body"]["users"][0]["online"].as_bool().unwrap();
    let chat = alice_ws
        .ok("chat.create_direct", json!({"user_id": bob.id}))
        .await;
    let chat_id = ChatId(chat["id"].as_i64().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !bob_online(
        &alice_ws
            .command("presence.get", json!({"user_ids": [bob.id]}))
            .await,
    ) {
        assert!(Instant::now() < deadline, "bob never came online");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let rss_before = rss_bytes();
    let text = "z".repeat(40 * 1024);
    let mut sent = 0usize;
    let started = Instant::now();
    loop {
        let body = seal_for(
            chat_id,
            &alice,
            &format!("big-{sent}"),
            &text,
            &[&alice, &bob],
        );
        alice_ws.ok("message.send", body).await;
        sent += 1;
        let presence = alice_ws
            .command("presence.get", json!({"user_ids": [bob.id]}))
            .await;
        if !bob_online(&presence) {
            break;
        }
        assert!(
            sent < 1000 && started.elapsed() < Duration::from_secs(120),
            "bob was never disconnected ({sent} messages of 40 KiB)"
        );
    }
    let rss_after = rss_bytes();

    // What Bob reads now: some events, then the end (a close saying why, or a
    // reset if the close could not get through); never every message.
    let mut events = 0usize;
    let mut close = None;
    while let Ok(Some(next)) = tokio::time::timeout(FRAME_TIMEOUT, bob_ws.next()).await {
        match next {
            Ok(Message::Text(_)) => events += 1,
            Ok(Message::Close(frame)) => {
                close = frame;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    eprintln!(
        "slow consumer: disconnected after {sent} messages of 40 KiB in {:?}; it read {events} \
         frames, close {close:?}; RSS {} -> {} KiB",
        started.elapsed(),
        rss_before / 1024,
        rss_after / 1024
    );
    assert!(events < sent, "{events} frames for {sent} messages");
    if let Some(close) = &close {
        assert_eq!(close.code, CloseCode::Again, "{close:?}");
        assert!(close.reason.contains("too slow"), "{close:?}");
    }
    let grown = rss_after.saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024 * 1024,
        "memory grew by {} KiB while a client did not read",
        grown / 1024
    );

    // Bob reconnects and catches up with resume: every message, in order.
    let (mut bob_ws, _) = Ws::open(&app, &bob_session).await;
    bob_ws
        .send(json!({"type": "resume", "positions": [{"chat_id": chat_id, "seq": 0}]}))
        .await;
    let mut seqs = Vec::new();
    loop {
        let frame = bob_ws.frame().await;
        match frame["type"].as_str() {
            Some("event") => seqs.push(frame["event"]["seq"].as_i64().unwrap()),
            Some("resumed") => break,
            _ => {}
        }
    }
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert!(
        seqs.len() > sent,
        "created + {sent} messages, got {}",
        seqs.len()
    );
}

/// A client may send many commands at once and read the replies afterwards:
/// the server stops reading while the replies back up, and never takes such
/// a client for a slow consumer.
#[tokio::test]
async fn a_client_that_pipelines_commands_and_then_reads_is_not_too_slow() {
    const BURST: u64 = 250;
    let app = spawn_app_with(|c| {
        c.websocket.outbound_queue = 16;
        c.websocket.client_timeout_secs = 60;
    })
    .await;
    let alice = person(&app, "wspipea", 0).await;
    let bob = person(&app, "wspipeb", 1).await;
    let bob_session = app.login(&bob.user).await;
    let (mut bob_ws, _) = Ws::open(&app, &bob_session).await;
    let chat = bob_ws
        .ok("chat.create_direct", json!({"user_id": alice.id}))
        .await;
    for round in 0..4 {
        let first = 1_000_000 + round * BURST;
        for id in first..first + BURST {
            bob_ws
                .send(json!({"type": "command", "id": id, "command": "chat.get",
                    "body": {"chat_id": chat["id"]}}))
                .await;
        }
        let mut ids = Vec::new();
        while ids.len() < BURST as usize {
            let frame = match bob_ws.read().await {
                Got::Frame(frame) => frame,
                Got::Closed(close) => panic!(
                    "closed after {} of {BURST} replies of round {round}: {close:?}",
                    ids.len()
                ),
            };
            if frame["type"] == "reply" {
                assert!(frame.get("error").is_none(), "{frame}");
                ids.push(frame["id"].as_u64().unwrap());
            }
        }
        ids.sort_unstable();
        assert_eq!(ids, (first..first + BURST).collect::<Vec<_>>());
    }
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

// ---- chats: fan-out and resume ----

#[tokio::test]
async fn a_message_reaches_the_recipient_and_the_senders_other_socket_not_its_own() {
    let app = gateway_app().await;
    let alice = person(&app, "wsfana", 0).await;
    let bob = person(&app, "wsfanb", 1).await;
    let alice_laptop = app.login(&alice.user).await;
    let alice_phone = app.login(&alice.user).await;
    let bob_session = app.login(&bob.user).await;
    let (mut laptop, _) = Ws::open(&app, &alice_laptop).await;
    let (mut phone, _) = Ws::open(&app, &alice_phone).await;
    let (mut bob_ws, _) = Ws::open(&app, &bob_session).await;

    let chat = laptop
        .ok("chat.create_direct", json!({"user_id": bob.id}))
        .await;
    let chat_id = ChatId(chat["id"].as_i64().unwrap());
    let body = seal_for(chat_id, &alice, "m-1", "hi bob", &[&alice, &bob]);
    let ack = laptop.ok("message.send", body).await;
    let seq = ack["seq"].as_i64().unwrap();

    for (who, ws) in [("bob", &mut bob_ws), ("alice's phone", &mut phone)] {
        let (got_chat, got_seq, event) = loop {
            let (c, s, e) = ws.event().await;
            if e["body"]["type"] == "message" {
                break (c, s, e);
            }
        };
        assert_eq!((got_chat, got_seq), (chat_id, seq), "{who}");
        assert_eq!(event["sender"], alice.id.0, "{who}");
        assert_eq!(event["body"]["client_msg_id"], "m-1", "{who}");
    }
    // The sending socket is not sent the event (its reply has the seq): the
    // next event it gets is the phone's later message (events of a chat come
    // in seq order, so its own would have come first)...
    let (_, created_seq, created) = laptop.event().await;
    assert_eq!(created["body"]["type"], "created", "{created}");
    let marker = seal_for(chat_id, &alice, "m-2", "from the phone", &[&alice, &bob]);
    let marker_seq = phone.ok("message.send", marker).await["seq"]
        .as_i64()
        .unwrap();
    let (got_chat, got_seq, event) = laptop.event().await;
    assert_eq!((got_chat, got_seq), (chat_id, marker_seq), "{event}");
    assert_eq!(event["body"]["client_msg_id"], "m-2");
    // ...but a resume returns it like any other.
    laptop
        .send(json!({"type": "resume", "positions": [{"chat_id": chat_id, "seq": created_seq}]}))
        .await;
    for (want_seq, want_id) in [(seq, "m-1"), (marker_seq, "m-2")] {
        let (got_chat, got_seq, event) = laptop.event().await;
        assert_eq!((got_chat, got_seq), (chat_id, want_seq));
        assert_eq!(event["body"]["client_msg_id"], want_id);
    }
    let resumed = laptop.frame().await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    assert_eq!(resumed["positions"][0]["seq"], marker_seq);
}

#[tokio::test]
async fn resume_after_reconnect_delivers_exactly_the_missed_events_in_order() {
    let app = gateway_app().await;
    let alice = person(&app, "wsresa", 0).await;
    let bob = person(&app, "wsresb", 1).await;
    let carol = person(&app, "wsresc", 2).await;
    let alice_session = app.login(&alice.user).await;
    let bob_session = app.login(&bob.user).await;
    let (mut alice_ws, _) = Ws::open(&app, &alice_session).await;
    let chat = alice_ws
        .ok("chat.create_direct", json!({"user_id": bob.id}))
        .await;
    let chat_id = ChatId(chat["id"].as_i64().unwrap());
    let send = |n: usize| seal_for(chat_id, &alice, &format!("r-{n}"), "x", &[&alice, &bob]);

    // Bob reads one message live, then goes offline.
    let (mut bob_ws, _) = Ws::open(&app, &bob_session).await;
    alice_ws.ok("message.send", send(0)).await;
    let last_seen = loop {
        let (_, seq, event) = bob_ws.event().await;
        if event["body"]["type"] == "message" {
            break seq;
        }
    };
    drop(bob_ws);

    // Ten messages while Bob is away.
    let mut missed = Vec::new();
    for n in 1..=10 {
        let ack = alice_ws.ok("message.send", send(n)).await;
        missed.push(ack["seq"].as_i64().unwrap());
    }

    // Bob comes back and resumes; Alice keeps sending meanwhile.
    let (mut bob_ws, _) = Ws::open(&app, &bob_session).await;
    bob_ws
        .send(json!({"type": "resume", "positions": [{"chat_id": chat_id, "seq": last_seen}]}))
        .await;
    let mut during = Vec::new();
    for n in 11..=15 {
        let ack = alice_ws.ok("message.send", send(n)).await;
        during.push(ack["seq"].as_i64().unwrap());
    }
    let expected: Vec<i64> = missed.iter().chain(&during).copied().collect();
    let mut got = Vec::new();
    let mut resumed = None;
    while got.len() < expected.len() {
        let frame = bob_ws.frame().await;
        match frame["type"].as_str() {
            Some("event") => got.push(frame["event"]["seq"].as_i64().unwrap()),
            Some("resumed") => resumed = Some(frame),
            Some("live") => {}
            other => panic!("unexpected {other:?}: {frame}"),
        }
    }
    assert_eq!(
        got, expected,
        "every missed event once, in order, then live ones"
    );
    if resumed.is_none() {
        let frame = bob_ws.frame().await;
        assert_eq!(frame["type"], "resumed", "{frame}");
        resumed = Some(frame);
    }
    let positions = &resumed.unwrap()["positions"];
    assert_eq!(positions[0]["chat_id"], chat_id.0);
    assert!(positions[0]["seq"].as_i64().unwrap() >= *missed.last().unwrap());
    // Nothing was repeated: the next event is a later message (events of a
    // chat come in seq order, so a repeat would have come before it).
    let marker = alice_ws.ok("message.send", send(16)).await["seq"]
        .as_i64()
        .unwrap();
    let (got_chat, got_seq, _) = bob_ws.event().await;
    assert_eq!((got_chat, got_seq), (chat_id, marker));

    // Resuming from the newest position gives nothing; a chat of others is refused.
    let carol_session = app.login(&carol.user).await;
    let (mut carol_ws, _) = Ws::open(&app, &carol_session).await;
    carol_ws
        .send(json!({"type": "resume", "positions": [{"chat_id": chat_id, "seq": 0}]}))
        .await;
    let refused = carol_ws.frame().await;
    assert_eq!(error_code(&refused), "not_a_member", "{refused}");
    // `resumed` comes after every event of the resume: none came before it.
    let resumed = carol_ws.frame().await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    assert_eq!(resumed["positions"], json!([]));
}

/// The next live presence frame about `user` that `ws` receives.
async fn presence_of(ws: &mut Ws, user: UserId) -> Value {
    loop {
        let frame = ws.frame().await;
        if frame["type"] == "live"
            && frame["event"]["type"] == "presence"
            && frame["event"]["user_id"] == user.0
        {
            return frame["event"].clone();
        }
    }
}

#[tokio::test]
async fn presence_and_typing_reach_those_who_share_a_chat() {
    let app = gateway_app().await;
    let alice = person(&app, "wspresa", 0).await;
    let bob = person(&app, "wspresb", 1).await;
    let carol = person(&app, "wspresc", 2).await;
    let (mut alice_ws, _) = Ws::open(&app, &app.login(&alice.user).await).await;
    let (mut carol_ws, _) = Ws::open(&app, &app.login(&carol.user).await).await;
    let chat = alice_ws
        .ok("chat.create_direct", json!({"user_id": bob.id}))
        .await;
    let chat_id = chat["id"].as_i64().unwrap();

    let bob_session = app.login(&bob.user).await;
    let (mut bob_ws, _) = Ws::open(&app, &bob_session).await;
    let online = presence_of(&mut alice_ws, bob.id).await;
    assert_eq!(online["online"], true, "{online}");

    // typing is live only, and only for the chat's members
    bob_ws.ok("chat.typing", json!({"chat_id": chat_id})).await;
    let typing = loop {
        let frame = alice_ws.frame().await;
        if frame["type"] == "live" && frame["event"]["type"] == "typing" {
            break frame["event"].clone();
        }
    };
    assert_eq!(typing["user_id"], bob.id.0);
    assert_eq!(typing["chat_id"], chat_id);

    bob_ws.stream.close(None).await.unwrap();
    drop(bob_ws);
    let offline = presence_of(&mut alice_ws, bob.id).await;
    assert_eq!(offline["online"], false, "{offline}");
    assert!(offline["last_seen_at"].as_i64().unwrap() > 0, "{offline}");
    let listed = alice_ws
        .ok("presence.get", json!({"user_ids": [bob.id]}))
        .await;
    assert_eq!(listed["users"][0]["online"], false, "{listed}");

    // carol shares no chat with bob: she heard nothing of him
    carol_ws.send(json!({"type": "ping"})).await;
    loop {
        let frame = carol_ws.frame().await;
        assert_ne!(frame["type"], "live", "{frame}");
        if frame["type"] == "pong" {
            break;
        }
    }
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_client_timeout_and_a_live_one_stays() {
    let app = spawn_app_with(|c| {
        c.websocket.heartbeat_interval_secs = 1;
        c.websocket.client_timeout_secs = 2;
    })
    .await;
    let alice = person(&app, "wsidle", 0).await;
    let session = app.login(&alice.user).await;
    let (mut silent, _) = Ws::open(&app, &session).await;
    let (mut live, _) = Ws::open(&app, &session).await;

    // `live` reads all along (tungstenite answers the server's pings while
    // reading); `silent` reads nothing, so it answers no ping.
    let keep_reading = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(4);
        let mut pings = 0;
        while let Ok(next) = tokio::time::timeout_at(deadline.into(), live.stream.next()).await {
            match next {
                Some(Ok(Message::Ping(_))) => pings += 1,
                Some(Ok(_)) => {}
                other => panic!("the live connection ended: {other:?}"),
            }
        }
        (live, pings)
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (frames, close) = silent.until_closed().await;
    assert!(frames.is_empty(), "{frames:?}");
    assert_closed_with(close.as_ref(), CloseCode::Away, "idle timeout");

    let (mut live, pings) = keep_reading.await.unwrap();
    assert!(pings >= 2, "heartbeat pings: {pings}");
    assert_eq!(live.ok("me.get", json!({})).await["id"], alice.id.0);
}

// ---- what a reader receives, and reply sizes (issue 11) ----

/// The envelope of a message event, and the size of its JSON.
fn message_envelope(event: &Value) -> (ferrogram_core::proto::Envelope, usize) {
    assert_eq!(event["body"]["type"], "message", "{event}");
    let envelope = serde_json::from_value(event["body"]["envelope"].clone()).unwrap();
    (envelope, event.to_string().len())
}

#[tokio::test]
async fn each_reader_of_a_100_member_group_gets_only_its_own_wrap_live_in_history_and_on_resume() {
    use ferrogram_core::crypto::envelope::{open_payload, verify_signature};
    let app = spawn_app_with(|c| {
        c.bench.enabled = true;
        c.websocket.outbound_queue = 512;
    })
    .await;
    let mut people = Vec::new();
    for n in 0..100 {
        people.push(bench_person(&app, "wswrap", n).await);
    }
    let alice = &people[0];
    let alice_session = app.login(&alice.user).await;
    let (mut alice_ws, _) = Ws::open(&app, &alice_session).await;
    let member_ids: Vec<UserId> = people[1..].iter().map(|p| p.id).collect();
    let chat = alice_ws
        .ok(
            "chat.create_group",
            json!({"title": "hundred", "member_ids": member_ids}),
        )
        .await;
    let chat_id = ChatId(chat["id"].as_i64().unwrap());
    assert_eq!(chat["members"].as_array().unwrap().len(), 100);

    // Three readers online before the message is sent.
    let readers = [&people[1], &people[50], &people[99]];
    let mut sockets = Vec::new();
    for reader in readers {
        let session = app.login(&reader.user).await;
        sockets.push(Ws::open(&app, &session).await.0);
    }
    let everyone: Vec<&Person> = people.iter().collect();
    let sent = seal_for(chat_id, alice, "hundred-1", "hello, all of you", &everyone);
    let whole_size = sent["envelope"].to_string().len();
    let ack = alice_ws.ok("message.send", sent).await;
    let seq = ack["seq"].as_i64().unwrap();

    for (reader, ws) in readers.iter().zip(&mut sockets) {
        // live
        let live = loop {
            let (_, got_seq, event) = ws.event().await;
            if got_seq == seq {
                break event;
            }
        };
        // history
        let page = ws
            .ok(
                "message.history",
                json!({"chat_id": chat_id, "after_seq": seq - 1}),
            )
            .await;
        let history = page["events"][0].clone();
        // resume
        ws.send(json!({"type": "resume", "positions": [{"chat_id": chat_id, "seq": seq - 1}]}))
            .await;
        let (_, resumed_seq, resumed) = ws.event().await;
        assert_eq!(resumed_seq, seq);
        let done = ws.frame().await;
        assert_eq!(done["type"], "resumed", "{done}");

        let mut seen = Vec::new();
        for (path, event) in [("live", &live), ("history", &history), ("resume", &resumed)] {
            let (envelope, size) = message_envelope(event);
            assert_eq!(envelope.wraps.len(), 1, "{path}: one wrap");
            assert_eq!(envelope.wraps[0].user_id, reader.id, "{path}: its own");
            let proof = envelope.wrap_proof.as_ref().expect("a wrap proof");
            assert_eq!(proof.count, 100, "{path}");
            // ~3.4 KB, where all 100 wraps are ~63 KB
            assert!(size < 5_000, "{path}: {size} bytes");
            assert!(size * 10 < whole_size, "{path}: {size} of {whole_size}");
            verify_signature(&envelope, &alice.identity.public_keys()).expect(path);
            let payload = open_payload(
                &envelope,
                reader.id,
                &reader.identity,
                &alice.identity.public_keys(),
            )
            .expect(path);
            assert_eq!(payload.text, "hello, all of you");
            seen.push(serde_json::to_value(&envelope).unwrap());
            eprintln!("{path}: {size} bytes per message (all wraps: {whole_size})");
        }
        assert!(seen.iter().all(|e| *e == seen[0]), "the three paths agree");
    }
}

#[tokio::test]
async fn a_resume_frame_naming_more_chats_than_the_cap_is_refused_with_a_code() {
    let app = spawn_app_with(|c| {
        c.limits.max_resume_chats = 1000;
    })
    .await;
    let alice = person(&app, "wsrcapa", 0).await;
    let bob = person(&app, "wsrcapb", 1).await;
    let session = app.login(&alice.user).await;
    let (mut ws, _) = Ws::open(&app, &session).await;
    let chat = ws
        .ok("chat.create_direct", json!({"user_id": bob.id}))
        .await;
    let chat_id = chat["id"].as_i64().unwrap();
    // The live `created` event comes first.
    let (_, _, created) = ws.event().await;
    assert_eq!(created["body"]["type"], "created");

    let too_many: Vec<Value> = (0..1001)
        .map(|n| json!({"chat_id": chat_id + n, "seq": 0}))
        .collect();
    ws.send(json!({"type": "resume", "positions": too_many}))
        .await;
    let refused = loop {
        let frame = ws.frame().await;
        if frame["type"] != "live" {
            break frame;
        }
    };
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(error_code(&refused), "too_many_resume_chats", "{refused}");
    // Nothing was resumed, and the socket works: a resume within the cap
    // (the client's next frame) goes through.
    ws.send(json!({"type": "resume", "positions": [{"chat_id": chat_id, "seq": 0}]}))
        .await;
    let (got_chat, _, created) = ws.event().await;
    assert_eq!(got_chat.0, chat_id);
    assert_eq!(created["body"]["type"], "created");
    let resumed = ws.frame().await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    assert_eq!(resumed["positions"][0]["chat_id"], chat_id);
}

/// The text of the next reply frame to `command` with its size.
async fn raw_reply(ws: &mut Ws, command: &str, body: Value) -> (Value, usize) {
    let id = ws.next_id;
    ws.next_id += 1;
    ws.send(json!({"type": "command", "id": id, "command": command, "body": body}))
        .await;
    loop {
        let next = tokio::time::timeout(FRAME_TIMEOUT, ws.stream.next())
            .await
            .expect("a frame in time");
        match next {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == "reply" && frame["id"] == id {
                    assert!(frame.get("error").is_none(), "{command}: {frame}");
                    return (frame["body"].clone(), text.len());
                }
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
}

#[tokio::test]
async fn chat_list_and_history_pages_stay_under_the_reply_cap() {
    const CAP: usize = 65_536;
    let app = spawn_app_with(|c| {
        c.limits.max_reply_bytes = CAP;
        c.websocket.outbound_queue = 512;
    })
    .await;
    let alice = person(&app, "wspagea", 0).await;
    let bob = person(&app, "wspageb", 1).await;
    // Bob lets Alice add him directly.
    open_to_groups(&app, &bob.user).await;
    let alice_session = app.login(&alice.user).await;
    let (mut alice_ws, _) = Ws::open(&app, &alice_session).await;
    // Bob is in 12 groups whose last message is ~20 KB of text.
    let big = "x".repeat(15_000);
    let mut chats = Vec::new();
    for n in 0..12 {
        let chat = alice_ws
            .ok(
                "chat.create_group",
                json!({"title": format!("big {n}"), "member_ids": [bob.id]}),
            )
            .await;
        let chat_id = ChatId(chat["id"].as_i64().unwrap());
        let body = seal_for(chat_id, &alice, &format!("big-{n}"), &big, &[&alice, &bob]);
        alice_ws.ok("message.send", body).await;
        chats.push(chat_id.0);
    }

    let bob_session = app.login(&bob.user).await;
    let (mut bob_ws, _) = Ws::open(&app, &bob_session).await;
    let mut listed = Vec::new();
    let mut cursor = Value::Null;
    let mut pages = 0;
    loop {
        let request = if cursor.is_null() {
            json!({})
        } else {
            json!({"cursor": cursor})
        };
        let (page, size) = raw_reply(&mut bob_ws, "chat.list", request).await;
        assert!(size <= CAP, "chat.list page of {size} bytes");
        pages += 1;
        for chat in page["chats"].as_array().unwrap() {
            assert_eq!(chat["last_message"]["body"]["type"], "message");
            listed.push(chat["id"].as_i64().unwrap());
        }
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert!(pages >= 4, "{pages} pages");
    // Every chat once, the most recently active first.
    let newest_first: Vec<i64> = chats.iter().rev().copied().collect();
    assert_eq!(listed, newest_first);
    // A cursor that chat.list did not make is refused.
    let bad = bob_ws
        .command("chat.list", json!({"cursor": "not a cursor"}))
        .await;
    assert_eq!(bad["error"]["code"], "invalid_cursor", "{bad}");

    // History: 8 big messages in one chat, asked for 200 at a time.
    let chat_id = ChatId(chats[0]);
    for n in 0..7 {
        let body = seal_for(chat_id, &alice, &format!("more-{n}"), &big, &[&alice, &bob]);
        alice_ws.ok("message.send", body).await;
    }
    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        let (page, size) = raw_reply(
            &mut bob_ws,
            "message.history",
            json!({"chat_id": chat_id, "after_seq": after, "limit": 200}),
        )
        .await;
        assert!(size <= CAP, "history page of {size} bytes");
        let events = page["events"].as_array().unwrap();
        assert!(!events.is_empty());
        for event in events {
            seqs.push(event["seq"].as_i64().unwrap());
        }
        after = *seqs.last().unwrap();
        if page["more"] == false {
            break;
        }
        assert!(events.len() < 9, "a full page is over the cap");
    }
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert_eq!(seqs.len(), 1 + 1 + 7, "created, the first message, 7 more");
}
