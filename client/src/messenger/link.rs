//! The messenger's connection: keeps one authenticated WebSocket open,
//! reconnects with exponential backoff and jitter when it drops, matches
//! replies to commands by id (with a timeout), and passes everything else
//! (events, live events, `resumed`, error frames) on, in order, together with
//! the moments a connection comes up or goes down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferrogram_core::proto::ws::{ClientFrame, ServerFrame};
use ferrogram_core::ApiError;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use zeroize::Zeroizing;

use super::{ConnectionState, Message, MessengerError, MessengerOptions};
use crate::addr::ServerAddr;
use crate::error::ClientError;
use crate::ws::{self, Socket};

/// What the connection hands to the messenger's event processor, in order.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A new connection is authenticated; commands can be sent.
    Linked,
    /// A frame that is not a reply.
    Frame(Box<ServerFrame>),
    /// The state to report (reconnecting, offline).
    State(ConnectionState),
    /// A message this device sent and the server acknowledged: the server
    /// does not push its event back to the connection that sent it.
    Sent {
        message: Box<Message>,
        /// The key id it was signed under (`envelope.sender_key`).
        key_id: Vec<u8>,
    },
}

/// How a command's reply arrived.
enum Reply {
    Body(Value),
    Refused(ApiError),
}

#[derive(Clone)]
enum LinkState {
    Down,
    Up(mpsc::UnboundedSender<String>),
    Closed { reason: String, session_ended: bool },
}

struct Shared {
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    current: watch::Sender<LinkState>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Reply>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The handle commands are sent through. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Link {
    shared: Arc<Shared>,
}

impl Link {
    /// Starts the connection task on an already authenticated `socket`.
    pub(crate) fn start(
        addr: ServerAddr,
        token: Zeroizing<String>,
        options: MessengerOptions,
        socket: Socket,
        inbound: mpsc::UnboundedSender<Inbound>,
    ) -> Link {
        let (current, _) = watch::channel(LinkState::Down);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            current,
            shutdown,
        });
        let task = Supervisor {
            shared: Arc::clone(&shared),
            addr,
            token,
            options,
            inbound,
            shutdown: shutdown_rx,
        };
        tokio::spawn(task.run(socket));
        Link { shared }
    }

    /// Stops the connection for good (idempotent).
    pub(crate) fn close(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// Sends a frame that expects no reply (e.g. `resume`) on the current
    /// connection; false if there is none.
    pub(crate) fn send_frame(&self, frame: &ClientFrame) -> bool {
        let LinkState::Up(tx) = &*self.shared.current.borrow() else {
            return false;
        };
        serde_json::to_string(frame).is_ok_and(|text| tx.send(text).is_ok())
    }

    /// Calls `command` and waits for its reply until `timeout`. While
    /// disconnected it waits for the next connection. When the connection
    /// drops after the command went out, a command that is safe to repeat
    /// (`idempotent`) is sent again; any other fails with `ConnectionLost`.
    pub(crate) async fn call(
        &self,
        command: &str,
        body: Value,
        timeout: Duration,
        idempotent: bool,
    ) -> Result<Value, MessengerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = || MessengerError::Timeout {
            command: command.to_owned(),
            after: timeout,
        };
        loop {
            let tx = self.wait_up(deadline).await.map_err(|e| match e {
                WaitError::Timeout => timed_out(),
                WaitError::Closed {
                    reason,
                    session_ended: true,
                } => MessengerError::Client(ClientError::Api(ApiError::new(
                    ferrogram_core::ErrorCode::Unauthorized,
                    reason,
                ))),
                WaitError::Closed { reason, .. } => MessengerError::Offline(reason),
            })?;
            let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
            let frame = ClientFrame::Command {
                id,
                command: command.to_owned(),
                body: body.clone(),
            };
            let text = serde_json::to_string(&frame).map_err(|source| MessengerError::Encode {
                command: command.to_owned(),
                source,
            })?;
            let (reply_tx, reply_rx) = oneshot::channel();
            self.shared.pending().insert(id, reply_tx);
            if tx.send(text).is_err() {
                // The connection ended before the frame left: nothing was sent.
                self.shared.pending().remove(&id);
                continue;
            }
            match tokio::time::timeout_at(deadline, reply_rx).await {
                Ok(Ok(Reply::Body(body))) => return Ok(body),
                Ok(Ok(Reply::Refused(error))) => {
                    return Err(MessengerError::Client(ClientError::Api(error)))
                }
                Ok(Err(_)) if idempotent => {}
                Ok(Err(_)) => {
                    return Err(MessengerError::ConnectionLost {
                        command: command.to_owned(),
                    })
                }
                Err(_) => {
                    self.shared.pending().remove(&id);
                    return Err(timed_out());
                }
            }
        }
    }

    async fn wait_up(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<mpsc::UnboundedSender<String>, WaitError> {
        let mut current = self.shared.current.subscribe();
        loop {
            match &*current.borrow_and_update() {
                LinkState::Up(tx) => return Ok(tx.clone()),
                LinkState::Closed {
                    reason,
                    session_ended,
                } => {
                    return Err(WaitError::Closed {
                        reason: reason.clone(),
                        session_ended: *session_ended,
                    })
                }
                LinkState::Down => {}
            }
            match tokio::time::timeout_at(deadline, current.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(WaitError::Closed {
                        reason: "the messenger stopped".into(),
                        session_ended: false,
                    })
                }
                Err(_) => return Err(WaitError::Timeout),
            }
        }
    }
}

enum WaitError {
    Timeout,
    Closed { reason: String, session_ended: bool },
}

/// Why one connection ended.
enum End {
    /// Closed on purpose ([`Link::close`]).
    Shutdown,
    /// The token no longer works (revoked, logged out, account deleted).
    SessionGone(String),
    /// Anything else: try again.
    Lost(String),
}

struct Supervisor {
    shared: Arc<Shared>,
    addr: ServerAddr,
    token: Zeroizing<String>,
    options: MessengerOptions,
    inbound: mpsc::UnboundedSender<Inbound>,
    shutdown: watch::Receiver<bool>,
}

impl Supervisor {
    async fn run(mut self, first: Socket) {
        let mut socket = Some(first);
        let mut attempt = 0u32;
        loop {
            let connected = match socket.take() {
                Some(socket) => Ok(socket),
                None => ws::open(&self.addr, &self.token, self.options.connect_timeout).await,
            };
            let end = match connected {
                Ok(socket) => {
                    attempt = 0;
                    self.serve(socket).await
                }
                Err(e) if e.is_unauthorized() => End::SessionGone(e.to_string()),
                Err(e) => End::Lost(e.to_string()),
            };
            match end {
                End::Shutdown => return self.finish("the messenger was closed".into(), false),
                End::SessionGone(reason) => return self.finish(reason, true),
                End::Lost(reason) => {
                    attempt = attempt.saturating_add(1);
                    let delay = backoff(
                        attempt,
                        self.options.backoff_initial,
                        self.options.backoff_max,
                        rand::random::<f64>(),
                    );
                    tracing::debug!(attempt, ?delay, %reason, "connection lost; reconnecting");
                    let _ = self
                        .inbound
                        .send(Inbound::State(ConnectionState::reconnecting(
                            attempt, delay,
                        )));
                    if *self.shutdown.borrow() {
                        return self.finish("the messenger was closed".into(), false);
                    }
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        _ = self.shutdown.changed() => {
                            return self.finish("the messenger was closed".into(), false);
                        }
                    }
                }
            }
        }
    }

    fn finish(&self, reason: String, session_ended: bool) {
        self.shared.current.send_replace(LinkState::Closed {
            reason: reason.clone(),
            session_ended,
        });
        self.shared.pending().clear();
        let _ = self
            .inbound
            .send(Inbound::State(ConnectionState::Offline { reason }));
    }

    /// Runs one connection until it ends.
    async fn serve(&mut self, socket: Socket) -> End {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        self.shared.current.send_replace(LinkState::Up(tx));
        let _ = self.inbound.send(Inbound::Linked);
        let end = self.pump(socket, &mut rx).await;
        drop(rx);
        self.shared.current.send_replace(LinkState::Down);
        // Dropping the reply senders tells waiting callers the connection is gone.
        self.shared.pending().clear();
        end
    }

    async fn pump(&mut self, socket: Socket, rx: &mut mpsc::UnboundedReceiver<String>) -> End {
        let (mut sink, mut stream) = socket.split();
        let mut ping = tokio::time::interval(self.options.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut last_heard = Instant::now();
        let ping_frame = serde_json::to_string(&ClientFrame::Ping)
            .unwrap_or_else(|_| r#"{"type":"ping"}"#.into());
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.changed() => {
                    let bye = CloseFrame { code: CloseCode::Normal, reason: "bye".into() };
                    let _ = sink.send(WsMessage::Close(Some(bye))).await;
                    return End::Shutdown;
                }
                incoming = stream.next() => {
                    let message = match incoming {
                        None => return End::Lost("the connection closed".into()),
                        Some(Err(e)) => return End::Lost(e.to_string()),
                        Some(Ok(message)) => message,
                    };
                    last_heard = Instant::now();
                    match message {
                        WsMessage::Text(text) => self.on_text(&text),
                        WsMessage::Close(frame) => {
                            let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                            return if ws::is_session_gone(&reason) {
                                End::SessionGone(format!("the server closed the connection: {reason}"))
                            } else {
                                End::Lost(format!("the server closed the connection: {reason}"))
                            };
                        }
                        // Pings are answered by tungstenite; binary is not ours.
                        _ => {}
                    }
                }
                out = rx.recv() => {
                    let Some(text) = out else {
                        return End::Lost("the outbound queue closed".into());
                    };
                    if let Err(e) = sink.send(WsMessage::text(text)).await {
                        return End::Lost(e.to_string());
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > self.options.dead_after {
                        return End::Lost(format!(
                            "nothing heard from the server for {} s",
                            self.options.dead_after.as_secs()
                        ));
                    }
                    if let Err(e) = sink.send(WsMessage::text(ping_frame.clone())).await {
                        return End::Lost(e.to_string());
                    }
                }
            }
        }
    }

    fn on_text(&self, text: &str) {
        let frame = match serde_json::from_str::<ServerFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                // Neither the frame nor serde's message (which may quote
                // part of it) is logged: only the kind of problem.
                tracing::warn!(problem = ?e.classify(), "ignoring a frame this client cannot read");
                return;
            }
        };
        match frame {
            ServerFrame::Reply { id, body, error } => {
                let Some(waiter) = self.shared.pending().remove(&id) else {
                    return;
                };
                let reply = match error {
                    Some(error) => Reply::Refused(error),
                    None => Reply::Body(
                        body.unwrap_or_else(|| Value::Object(serde_json::Map::default())),
                    ),
                };
                let _ = waiter.send(reply);
            }
            ServerFrame::Pong | ServerFrame::Ready { .. } => {}
            other => {
                let _ = self.inbound.send(Inbound::Frame(Box::new(other)));
            }
        }
    }
}

/// The wait before reconnect attempt `attempt` (1, 2, ...): `initial`
/// doubled per attempt up to `max`, then "equal jitter": half of it fixed,
/// half scaled by `jitter` (0 to 1), so clients that lost the server at the
/// same moment do not all come back at the same moment.
pub(crate) fn backoff(attempt: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    let full = initial.saturating_mul(1u32 << doublings.min(31)).min(max);
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let initial = Duration::from_millis(200);
        let max = Duration::from_secs(10);
        assert_eq!(backoff(1, initial, max, 1.0), initial);
        assert_eq!(backoff(1, initial, max, 0.0), initial / 2);
        assert_eq!(backoff(2, initial, max, 1.0), initial * 2);
        assert_eq!(backoff(4, initial, max, 1.0), initial * 8);
        assert_eq!(backoff(40, initial, max, 1.0), max);
        assert_eq!(backoff(u32::MAX, initial, max, 0.5), max * 3 / 4);
        for attempt in 1..50 {
            let d = backoff(attempt, initial, max, 0.37);
            assert!(d <= max && d >= initial / 2, "{attempt}: {d:?}");
        }
    }
}
