//! The outbound side of one connection: two bounded queues and the task that
//! writes them to the socket.
//!
//! - `live` (capacity `websocket.outbound_queue`): replies, events, pings. The
//!   session actor never waits on it: it uses `try_send`, and a full queue
//!   means the client does not keep up, so it is disconnected ("too slow")
//!   and catches up later with `resume`. Memory per connection is bounded.
//! - `bulk` (small): the backlog of a `resume`, paged from storage by a task
//!   that *waits* for room, so a long backlog is paced by the client instead
//!   of overflowing `live`.
//!
//! The writer always drains `bulk` before `live`. A resumed chat's held-back
//! live events are queued on `live` only after its whole backlog is on `bulk`,
//! so they are written after it.
//!
//! Closing: what is queued is still written (except for a client too slow to
//! take it: that is dropped, the store has it), then an optional error frame
//! and the close frame, all within a deadline; a peer that does not finish
//! the close promptly is cut off.

use crate::ws::frame::CloseCause;
use crate::ws::socket::SocketCutter;
use crate::ws::wire::{Closed, FrameWriter};
use actix_web::web::Bytes;
use bytestring::ByteString;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};

/// Capacity of the resume backlog queue.
pub const BULK_QUEUE: usize = 16;

/// How long the error and close frames may take to reach the socket's buffers.
const CLOSE_SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// How long after its close frame a connection may stay open before it is
/// cut: enough for a live client to read the frame and hang up itself.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// One frame to write.
#[derive(Debug)]
pub enum Outbound {
    Text(ByteString),
    Ping,
    Pong(Bytes),
}

/// How to end the connection.
#[derive(Debug)]
pub struct CloseRequest {
    /// An `error` frame to send before the close frame.
    pub error_frame: Option<ByteString>,
    pub cause: CloseCause,
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The live queue is full: the client is too slow.
    Full,
    /// The writer is gone (the connection ended).
    Closed,
}

/// The session actor's end of the queues.
pub struct Outbox {
    live: mpsc::Sender<Outbound>,
    bulk: mpsc::Sender<Outbound>,
    close: Option<oneshot::Sender<CloseRequest>>,
    /// Told by the writer each time it takes a frame off `live` (and when it
    /// ends), for [`Outbox::wait_for_room`].
    room: Arc<Notify>,
}

impl Outbox {
    /// Queues a frame without waiting.
    pub fn push(&self, frame: Outbound) -> Result<(), PushError> {
        self.live.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PushError::Full,
            mpsc::error::TrySendError::Closed(_) => PushError::Closed,
        })
    }

    /// The backlog queue, for a resume task that waits for room.
    pub fn bulk(&self) -> mpsc::Sender<Outbound> {
        self.bulk.clone()
    }

    /// Size of the live queue.
    pub fn capacity(&self) -> usize {
        self.live.max_capacity()
    }

    /// Free slots in the live queue now.
    pub fn free(&self) -> usize {
        self.live.capacity()
    }

    /// Resolves once `slots` slots of the live queue are free (false if the
    /// writer is gone). It takes no slot itself: waiting with
    /// `reserve_many` would hold every slot the writer frees until it had
    /// them all, so the replies of commands still running would find the
    /// queue "full" and a client that does read would be closed as too slow.
    pub fn wait_for_room(&self, slots: usize) -> impl std::future::Future<Output = bool> {
        let live = self.live.clone();
        let room = self.room.clone();
        let slots = slots.clamp(1, live.max_capacity());
        async move {
            loop {
                if live.is_closed() {
                    return false;
                }
                if live.capacity() >= slots {
                    return true;
                }
                // A wake-up given before this wait is kept (`notify_one`).
                room.notified().await;
            }
        }
    }

    /// Asks the writer to close the connection. False when already asked.
    pub fn close(&mut self, request: CloseRequest) -> bool {
        match self.close.take() {
            Some(tx) => {
                let _ = tx.send(request);
                true
            }
            None => false,
        }
    }
}

/// Starts the writer task of one connection and returns its queues.
pub fn spawn(ws: FrameWriter, capacity: usize, cutter: SocketCutter) -> Outbox {
    let (live_tx, live_rx) = mpsc::channel(capacity.max(1));
    let (bulk_tx, bulk_rx) = mpsc::channel(BULK_QUEUE);
    let (close_tx, close_rx) = oneshot::channel();
    let room = Arc::new(Notify::new());
    actix_web::rt::spawn(write_loop(
        ws,
        live_rx,
        bulk_rx,
        close_rx,
        cutter,
        room.clone(),
    ));
    Outbox {
        live: live_tx,
        bulk: bulk_tx,
        close: Some(close_tx),
        room,
    }
}

/// Wakes a [`Outbox::wait_for_room`] for good when the writer ends.
struct WakeOnDrop(Arc<Notify>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

async fn write_loop(
    mut ws: FrameWriter,
    mut live: mpsc::Receiver<Outbound>,
    mut bulk: mpsc::Receiver<Outbound>,
    mut close: oneshot::Receiver<CloseRequest>,
    cutter: SocketCutter,
    room: Arc<Notify>,
) {
    let _ended = WakeOnDrop(room.clone());
    let queues = Queues {
        live: &mut live,
        bulk: &mut bulk,
    };
    loop {
        let frame = tokio::select! {
            biased;
            request = &mut close => return finish(ws, request.ok(), None, queues, &cutter).await,
            Some(frame) = queues.bulk.recv() => frame,
            Some(frame) = queues.live.recv() => {
                room.notify_one();
                frame
            }
            // Both queues are gone with the actor: the connection ended.
            else => return,
        };
        // A close request interrupts a write blocked by a peer that does not read.
        let written = tokio::select! {
            biased;
            request = &mut close => {
                return finish(ws, request.ok(), Some(frame), queues, &cutter).await
            }
            written = write(&mut ws, &frame) => written,
        };
        if written.is_err() {
            return;
        }
    }
}

struct Queues<'a> {
    live: &'a mut mpsc::Receiver<Outbound>,
    bulk: &'a mut mpsc::Receiver<Outbound>,
}

async fn write(ws: &mut FrameWriter, frame: &Outbound) -> Result<(), Closed> {
    match frame {
        Outbound::Text(text) => ws.text(text).await,
        Outbound::Ping => ws.ping().await,
        Outbound::Pong(payload) => ws.pong(payload).await,
    }
}

/// Writes what is still queued (unless the client is too slow to take it),
/// the error frame and the close frame, then cuts a connection that is still
/// open after a short linger. `request` is `None` when the actor went away
/// without asking to close (the connection already ended).
async fn finish(
    ws: FrameWriter,
    request: Option<CloseRequest>,
    unsent: Option<Outbound>,
    queues: Queues<'_>,
    cutter: &SocketCutter,
) {
    let Some(CloseRequest { error_frame, cause }) = request else {
        return;
    };
    let mut ws = ws;
    let sent = tokio::time::timeout(CLOSE_SEND_TIMEOUT, async move {
        if cause != CloseCause::TooSlow {
            if let Some(frame) = unsent {
                write(&mut ws, &frame).await?;
            }
            while let Ok(frame) = queues.bulk.try_recv() {
                write(&mut ws, &frame).await?;
            }
            while let Ok(frame) = queues.live.try_recv() {
                write(&mut ws, &frame).await?;
            }
        }
        if let Some(error) = error_frame {
            ws.text(&error).await?;
        }
        ws.close(Some(cause.close_reason())).await
    })
    .await;
    if !matches!(sent, Ok(Ok(()))) {
        tracing::debug!(
            cause = cause.kind(),
            "close frame not delivered; cutting the connection"
        );
        cutter.cut();
        return;
    }
    // RFC 6455 lets the server end the TCP connection after the closing
    // handshake; a peer that neither answers nor reads is cut off here.
    tokio::time::sleep(CLOSE_LINGER).await;
    cutter.cut();
}
