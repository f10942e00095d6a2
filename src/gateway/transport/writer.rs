//! The outbound side of one connection: two bounded queues and the task that
//! writes them to the socket.
//!
//! - `live` (capacity `websocket.outbound_queue` frames, and
//!   `websocket.outbound_queue_bytes` bytes counted by [`crate::gateway::transport::budget`]):
//!   replies, events, pings. The connection actor never waits on it: it uses
//!   `try_send`, and an event that finds the queue full (in frames, in bytes,
//!   or the server's total budget spent) means the client does not keep up,
//!   so it is disconnected ("too slow") and catches up later with `resume`.
//!   Replies are counted but never refused: the session stops reading
//!   commands while the queue is half full instead. Memory per connection is
//!   bounded.
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

use crate::gateway::transport::budget::{Charge, ConnMeter, OverBudget};
use crate::gateway::transport::frame::CloseCause;
use crate::gateway::transport::socket::SocketCutter;
use crate::gateway::transport::wire::{Closed, FrameWriter};
use actix_web::web::Bytes;
use bytestring::ByteString;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

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
    /// The frame would take the connection over its byte budget, or the
    /// server over its total: the client is too slow.
    OverBudget(OverBudget),
    /// The writer is gone (the connection ended).
    Closed,
}

/// The connection actor's end of the queues.
pub struct Outbox {
    live: mpsc::Sender<Queued>,
    bulk: mpsc::Sender<Outbound>,
    close: Option<oneshot::Sender<CloseRequest>>,
    /// The connection's byte count; its wake-ups (each frame the writer
    /// takes off `live`, each release of bytes, the writer's end) serve
    /// [`Outbox::wait_for_room`].
    meter: Arc<ConnMeter>,
}

/// A frame on the live queue with its byte count.
type Queued = (Outbound, Option<Charge>);

impl Outbox {
    /// Queues a frame the server pushes on its own, without waiting. Text
    /// frames are counted against the byte budgets and refused over them.
    pub fn push(&self, frame: Outbound) -> Result<(), PushError> {
        let charge = match &frame {
            Outbound::Text(text) => Some(
                self.meter
                    .try_charge(text.len())
                    .map_err(PushError::OverBudget)?,
            ),
            Outbound::Ping | Outbound::Pong(_) => None,
        };
        self.enqueue(frame, charge)
    }

    /// Queues the reply to one of the client's commands: counted, never
    /// refused for its bytes (the session paces commands instead).
    pub fn push_reply(&self, text: ByteString) -> Result<(), PushError> {
        let charge = self.meter.charge(text.len());
        self.enqueue(Outbound::Text(text), Some(charge))
    }

    fn enqueue(&self, frame: Outbound, charge: Option<Charge>) -> Result<(), PushError> {
        self.live.try_send((frame, charge)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PushError::Full,
            mpsc::error::TrySendError::Closed(_) => PushError::Closed,
        })
    }

    /// The connection's byte count.
    pub fn meter(&self) -> &Arc<ConnMeter> {
        &self.meter
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

    /// Resolves once `slots` slots of the live queue are free and at most
    /// `bytes` are counted on the connection (false if the writer is gone).
    /// It takes no slot itself: waiting with `reserve_many` would hold every
    /// slot the writer frees until it had them all, so the replies of
    /// commands still running would find the queue "full" and a client that
    /// does read would be closed as too slow.
    pub fn wait_for_room(
        &self,
        slots: usize,
        bytes: usize,
    ) -> impl std::future::Future<Output = bool> {
        let live = self.live.clone();
        let meter = self.meter.clone();
        let slots = slots.clamp(1, live.max_capacity());
        async move {
            loop {
                if live.is_closed() {
                    return false;
                }
                if live.capacity() >= slots && meter.used() <= bytes {
                    return true;
                }
                // A wake-up given before this wait is kept (`notify_one`).
                meter.released().await;
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
pub fn spawn(
    ws: FrameWriter,
    capacity: usize,
    meter: Arc<ConnMeter>,
    cutter: SocketCutter,
) -> Outbox {
    let (live_tx, live_rx) = mpsc::channel(capacity.max(1));
    let (bulk_tx, bulk_rx) = mpsc::channel(BULK_QUEUE);
    let (close_tx, close_rx) = oneshot::channel();
    actix_web::rt::spawn(write_loop(
        ws,
        live_rx,
        bulk_rx,
        close_rx,
        cutter,
        meter.clone(),
    ));
    Outbox {
        live: live_tx,
        bulk: bulk_tx,
        close: Some(close_tx),
        meter,
    }
}

/// Wakes a [`Outbox::wait_for_room`] for good when the writer ends.
struct WakeOnDrop(Arc<ConnMeter>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.0.notify();
    }
}

async fn write_loop(
    mut ws: FrameWriter,
    mut live: mpsc::Receiver<Queued>,
    mut bulk: mpsc::Receiver<Outbound>,
    mut close: oneshot::Receiver<CloseRequest>,
    cutter: SocketCutter,
    room: Arc<ConnMeter>,
) {
    let _ended = WakeOnDrop(room.clone());
    let queues = Queues {
        live: &mut live,
        bulk: &mut bulk,
    };
    loop {
        let mut frame = tokio::select! {
            biased;
            request = &mut close => return finish(ws, request.ok(), None, queues, &cutter).await,
            Some(frame) = queues.bulk.recv() => (frame, None),
            Some(frame) = queues.live.recv() => {
                room.notify();
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
            written = write(&mut ws, &mut frame) => written,
        };
        if written.is_err() {
            return;
        }
    }
}

struct Queues<'a> {
    live: &'a mut mpsc::Receiver<Queued>,
    bulk: &'a mut mpsc::Receiver<Outbound>,
}

/// Writes one frame; its byte count goes along with it to the HTTP layer.
async fn write(ws: &mut FrameWriter, frame: &mut Queued) -> Result<(), Closed> {
    let (frame, charge) = frame;
    match frame {
        Outbound::Text(text) => ws.text(text, charge.take()).await,
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
    unsent: Option<Queued>,
    queues: Queues<'_>,
    cutter: &SocketCutter,
) {
    let Some(CloseRequest { error_frame, cause }) = request else {
        return;
    };
    if cause.refuses_input() {
        // Nothing more the peer sends is read: a client pushing the payload
        // of a refused frame is held up by TCP flow control instead of
        // being drained (and discarded) until the connection is cut.
        cutter.stop_reading();
    }
    let mut ws = ws;
    let sent = tokio::time::timeout(CLOSE_SEND_TIMEOUT, async move {
        if cause != CloseCause::TooSlow {
            if let Some(mut frame) = unsent {
                write(&mut ws, &mut frame).await?;
            }
            while let Ok(frame) = queues.bulk.try_recv() {
                write(&mut ws, &mut (frame, None)).await?;
            }
            while let Ok(mut frame) = queues.live.try_recv() {
                write(&mut ws, &mut frame).await?;
            }
        }
        if let Some(error) = error_frame {
            ws.text(&error, None).await?;
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
