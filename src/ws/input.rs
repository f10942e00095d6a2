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

use futures_util::task::AtomicWaker;
use futures_util::Stream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

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
