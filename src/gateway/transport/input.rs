//! Backpressure on what a client sends.
//!
//! A client that pipelines requests faster than it reads the replies must not
//! make the server buffer the replies, nor be mistaken for a slow consumer.
//! So the session pauses reading the client's frames while its own work for
//! that client is backed up (the outbound queue half full, or the most
//! commands running at once); the client's further frames then wait in the
//! socket buffers, and TCP makes it wait. Only events the server pushes on its
//! own (fan-out) can overflow the outbound queue, and that does mean the
//! client is too slow.
//!
//! Reading also pauses while a client sends frames faster than
//! `websocket.max_frames_per_sec` ([`FrameRate`]): one socket cannot make
//! the server parse and dispatch frames as fast as loopback carries them
//! (a flood of `chat.typing` took the legitimate users' p99 from 20 ms to
//! 380 ms). Nothing is refused: the frames wait in the socket buffers.

use futures_util::task::AtomicWaker;
use futures_util::Stream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A token bucket of incoming frames: `burst` at once, refilled at `per_sec`.
#[derive(Debug, Clone)]
pub struct FrameRate {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl FrameRate {
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_sec: f64::from(per_sec.max(1)),
            burst,
            tokens: burst,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        self.updated = now;
    }

    /// Counts one frame read. Frames already on their way when reading
    /// paused still count, so the balance may go below zero.
    pub fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }

    /// How long reading must wait before the next frame; zero when it may
    /// go on.
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec)
        }
    }
}

/// The switch shared between the session and its incoming stream.
#[derive(Debug, Default)]
pub struct InputGate {
    paused: AtomicBool,
    waker: AtomicWaker,
}

impl InputGate {
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
        self.waker.wake();
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }
}

/// A stream that yields nothing while its gate is paused.
pub struct Gated<S> {
    inner: S,
    gate: Arc<InputGate>,
}

impl<S> Gated<S> {
    pub fn new(inner: S, gate: Arc<InputGate>) -> Self {
        Self { inner, gate }
    }
}

impl<S: Stream + Unpin> Stream for Gated<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.gate.is_paused() {
            self.gate.waker.register(cx.waker());
            // Resumed between the check and the registration: go on.
            if self.gate.is_paused() {
                return Poll::Pending;
            }
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn a_paused_gate_holds_items_until_resumed() {
        let gate = Arc::new(InputGate::default());
        let mut stream = Gated::new(futures_util::stream::iter([1, 2, 3]), gate.clone());
        assert_eq!(stream.next().await, Some(1));
        gate.pause();
        let held = tokio::time::timeout(std::time::Duration::from_millis(50), stream.next()).await;
        assert!(held.is_err(), "nothing while paused");
        let waiter = tokio::spawn(async move { stream.collect::<Vec<_>>().await });
        tokio::task::yield_now().await;
        gate.resume();
        assert_eq!(waiter.await.unwrap(), vec![2, 3]);
    }
}

#[cfg(test)]
mod frame_rate_tests {
    use super::FrameRate;
    use std::time::{Duration, Instant};

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut rate = FrameRate::new(100, 5, start);
        for _ in 0..5 {
            assert_eq!(rate.wait(start), Duration::ZERO);
            rate.take(start);
        }
        // Empty: one frame's worth of time (10 ms) to wait.
        let wait = rate.wait(start);
        assert!(
            wait > Duration::from_millis(9) && wait <= Duration::from_millis(10),
            "{wait:?}"
        );
        assert_eq!(rate.wait(start + Duration::from_millis(10)), Duration::ZERO);
        // Frames read while paused are owed: two more means 30 ms.
        rate.take(start + Duration::from_millis(10));
        rate.take(start + Duration::from_millis(10));
        let wait = rate.wait(start + Duration::from_millis(10));
        assert!(
            wait > Duration::from_millis(19) && wait <= Duration::from_millis(20),
            "{wait:?}"
        );
        // A long pause refills only up to the burst.
        let later = start + Duration::from_secs(60);
        for _ in 0..5 {
            rate.take(later);
        }
        assert!(rate.wait(later) > Duration::ZERO);
    }
}
