//! Outbound memory in bytes: each connection's queue has a byte budget
//! (`websocket.outbound_queue_bytes`) and the whole server one more
//! (`websocket.outbound_total_bytes`).
//!
//! Every text frame queued on a connection's live queue carries a [`Charge`]
//! of its length, counted on its connection and on the server; the charge is
//! released when the frame has been handed to the HTTP layer for writing (or
//! dropped with a connection that ended). So what is counted is what the
//! server holds for clients that have not taken it yet. A frame shared by
//! several connections (one event to many members) is counted on each of
//! them: the count is an upper bound of the memory.
//!
//! Events and other frames the server pushes on its own ([`ConnMeter::try_charge`])
//! are refused when they would take the connection over its budget, or the
//! server over its total while the connection already has something queued:
//! the client is then too slow and is disconnected. Replies to the client's
//! own commands ([`ConnMeter::charge`]) are never refused; the session paces
//! them instead, reading no further command while the queue is half full
//! (see `crate::gateway::transport::input`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// The server-wide count and limits (one per server).
#[derive(Debug)]
pub struct OutboundBudget {
    per_conn: usize,
    total_limit: usize,
    total: AtomicUsize,
    /// Connections with something counted.
    holders: AtomicUsize,
    /// The most any one connection ever had counted (tests, diagnostics).
    peak_conn: AtomicUsize,
    /// The most the whole server ever had counted.
    peak_total: AtomicUsize,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverBudget {
    /// Over the connection's own budget.
    Connection,
    /// Over the server's total budget.
    Server,
}

impl OutboundBudget {
    pub fn new(per_conn: usize, total_limit: usize) -> Arc<Self> {
        Arc::new(Self {
            per_conn: per_conn.max(1),
            total_limit: total_limit.max(1),
            total: AtomicUsize::new(0),
            holders: AtomicUsize::new(0),
            peak_conn: AtomicUsize::new(0),
            peak_total: AtomicUsize::new(0),
        })
    }

    /// A meter for one new connection.
    pub fn connection(self: &Arc<Self>) -> Arc<ConnMeter> {
        Arc::new(ConnMeter {
            server: self.clone(),
            used: AtomicUsize::new(0),
            room: Notify::new(),
        })
    }

    /// Bytes counted on the whole server now.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// The most bytes any single connection had counted at once.
    pub fn peak_connection(&self) -> usize {
        self.peak_conn.load(Ordering::Acquire)
    }

    /// The most bytes the whole server had counted at once.
    pub fn peak_total(&self) -> usize {
        self.peak_total.load(Ordering::Acquire)
    }

    /// The budget of one connection.
    pub fn per_connection(&self) -> usize {
        self.per_conn
    }

    /// The budget of the whole server.
    pub fn total_limit(&self) -> usize {
        self.total_limit
    }

    /// True while the server holds more than half its total budget.
    pub fn is_busy(&self) -> bool {
        self.total() > self.total_limit / 2
    }
}

/// One connection's count.
#[derive(Debug)]
pub struct ConnMeter {
    server: Arc<OutboundBudget>,
    used: AtomicUsize,
    /// Told whenever bytes are released (for a session waiting for room).
    room: Notify,
}

impl ConnMeter {
    /// Bytes counted on this connection now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The connection's budget.
    pub fn budget(&self) -> usize {
        self.server.per_conn
    }

    pub fn server(&self) -> &OutboundBudget {
        &self.server
    }

    /// Counts a frame the server pushes on its own, unless it would take the
    /// connection over its budget, or the server over its total while this
    /// connection holds more than an equal share of the total (so the
    /// connections that do not read are the ones closed, not a reader that
    /// happens to have a frame waiting). A frame on an empty queue always
    /// goes (so no single frame is undeliverable).
    pub fn try_charge(self: &Arc<Self>, bytes: usize) -> Result<Charge, OverBudget> {
        let used = self.used();
        if used > 0 {
            if used.saturating_add(bytes) > self.server.per_conn {
                return Err(OverBudget::Connection);
            }
            let server = &self.server;
            if server.total().saturating_add(bytes) > server.total_limit {
                let share = server.total_limit / server.holders.load(Ordering::Acquire).max(1);
                if used > share {
                    return Err(OverBudget::Server);
                }
            }
        }
        Ok(self.charge(bytes))
    }

    /// Counts a reply: never refused (the session paces replies instead).
    pub fn charge(self: &Arc<Self>, bytes: usize) -> Charge {
        let before = self.used.fetch_add(bytes, Ordering::AcqRel);
        if before == 0 && bytes > 0 {
            self.server.holders.fetch_add(1, Ordering::AcqRel);
        }
        let used = before + bytes;
        let total = self.server.total.fetch_add(bytes, Ordering::AcqRel) + bytes;
        self.server.peak_conn.fetch_max(used, Ordering::AcqRel);
        self.server.peak_total.fetch_max(total, Ordering::AcqRel);
        Charge {
            meter: self.clone(),
            bytes,
        }
    }

    /// Wakes the waiter of [`ConnMeter::released`] (the writer took a frame).
    pub fn notify(&self) {
        self.room.notify_one();
    }

    /// Resolves the next time bytes are released (or at once if a release
    /// happened since the last wait).
    pub async fn released(&self) {
        self.room.notified().await;
    }
}

/// The count of one queued frame; released when dropped.
#[derive(Debug)]
pub struct Charge {
    meter: Arc<ConnMeter>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        let before = self.meter.used.fetch_sub(self.bytes, Ordering::AcqRel);
        if before == self.bytes && self.bytes > 0 {
            self.meter.server.holders.fetch_sub(1, Ordering::AcqRel);
        }
        self.meter
            .server
            .total
            .fetch_sub(self.bytes, Ordering::AcqRel);
        self.meter.room.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_refused_over_its_budget_and_released_charges_free_it() {
        let server = OutboundBudget::new(100, 1000);
        let conn = server.connection();
        let a = conn.try_charge(60).unwrap();
        assert_eq!(conn.try_charge(41).unwrap_err(), OverBudget::Connection);
        let b = conn.try_charge(40).unwrap();
        assert_eq!((conn.used(), server.total()), (100, 100));
        drop(a);
        assert_eq!((conn.used(), server.total()), (40, 40));
        let _c = conn.try_charge(60).unwrap();
        drop(b);
        assert_eq!(server.peak_connection(), 100);
    }

    #[test]
    fn the_server_total_refuses_connections_that_hold_more_than_their_share() {
        let server = OutboundBudget::new(200, 150);
        let (x, y) = (server.connection(), server.connection());
        let _x1 = x.try_charge(90).unwrap();
        let _y1 = y.try_charge(50).unwrap();
        // over the total: x holds more than 150 / 2, y does not
        assert_eq!(x.try_charge(20).unwrap_err(), OverBudget::Server);
        let y2 = y.try_charge(20).unwrap();
        // a connection with an empty queue still gets its frame
        let z = server.connection();
        let _z1 = z.try_charge(99).unwrap();
        assert_eq!(server.total(), 259);
        assert_eq!(server.peak_total(), 259);
        // three holders now: y's 70 is over 150 / 3
        assert_eq!(y.try_charge(1).unwrap_err(), OverBudget::Server);
        drop(y2);
        assert_eq!(server.holders.load(Ordering::Acquire), 3);
    }

    #[test]
    fn replies_are_always_counted_and_a_first_frame_always_goes() {
        let server = OutboundBudget::new(10, 10);
        let conn = server.connection();
        let big = conn.try_charge(50).unwrap();
        let reply = conn.charge(30);
        assert_eq!(conn.used(), 80);
        assert!(conn.try_charge(1).is_err());
        drop((big, reply));
        assert_eq!((conn.used(), server.total()), (0, 0));
    }

    #[tokio::test]
    async fn a_release_wakes_a_waiter() {
        let server = OutboundBudget::new(10, 10);
        let conn = server.connection();
        let charge = conn.charge(5);
        let waiter = tokio::spawn({
            let conn = conn.clone();
            async move { conn.released().await }
        });
        tokio::task::yield_now().await;
        drop(charge);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
