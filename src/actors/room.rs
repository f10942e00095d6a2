//! `ChatRoom`: one actor per active chat. The hub starts it on the chat's
//! first event and stops it after `websocket.room_idle_secs` without events.
//!
//! Handlers report committed events from their own tasks, so two events
//! committed in one batch may be reported out of order. The room puts them
//! back in seq order (holding a later event briefly while an earlier one is
//! missing), serializes each event once and hands every online session of
//! every member its frame: the same for all, or for a message in envelope
//! version 2 one with only that member's key wrap (`ws::event_frames`).

use crate::actors::messages::{DeliverEvent, PublishEvent, StopRoom};
use crate::ws::event_frames::EventFrames;
use actix::prelude::*;
use ferrogram_core::ids::{ChatId, Seq, UserId};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a later event waits for a missing earlier one before it is
/// delivered anyway (clients that see a gap resume from storage).
pub const REORDER_WINDOW: Duration = Duration::from_millis(200);

/// Events held at most while waiting for a missing one.
const MAX_HELD: usize = 1024;

/// Puts items numbered by seq back in order. The first item sets the start;
/// an item older than what was already released is released at once (late,
/// but never lost).
#[derive(Debug)]
pub struct SeqOrderer<T> {
    next: Option<Seq>,
    held: BTreeMap<Seq, T>,
}

impl<T> Default for SeqOrderer<T> {
    fn default() -> Self {
        Self {
            next: None,
            held: BTreeMap::new(),
        }
    }
}

impl<T> SeqOrderer<T> {
    /// Takes one item; returns those now ready, in order.
    pub fn push(&mut self, seq: Seq, item: T) -> Vec<(Seq, T)> {
        let next = *self.next.get_or_insert(seq);
        if seq < next {
            return vec![(seq, item)];
        }
        if seq > next {
            self.held.insert(seq, item);
            if self.held.len() > MAX_HELD {
                return self.flush();
            }
            return Vec::new();
        }
        let mut ready = vec![(seq, item)];
        let mut next = seq + 1;
        while let Some(item) = self.held.remove(&next) {
            ready.push((next, item));
            next += 1;
        }
        self.next = Some(next);
        ready
    }

    /// Gives up waiting: everything held, in order.
    pub fn flush(&mut self) -> Vec<(Seq, T)> {
        let held = std::mem::take(&mut self.held);
        if let Some((&last, _)) = held.last_key_value() {
            self.next = Some(last + 1);
        }
        held.into_iter().collect()
    }

    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }
}

struct Pending {
    chat_id: ChatId,
    seq: Seq,
    frames: EventFrames,
    targets: Vec<(UserId, Recipient<DeliverEvent>)>,
}

pub struct ChatRoom {
    chat_id: ChatId,
    orderer: SeqOrderer<Pending>,
    flush_timer: Option<SpawnHandle>,
}

impl ChatRoom {
    pub fn new(chat_id: ChatId) -> Self {
        Self {
            chat_id,
            orderer: SeqOrderer::default(),
            flush_timer: None,
        }
    }

    fn deliver(ready: Vec<(Seq, Pending)>) {
        for (_, pending) in ready {
            for (user, target) in &pending.targets {
                target.do_send(DeliverEvent {
                    chat_id: pending.chat_id,
                    seq: pending.seq,
                    frame: pending.frames.for_member(*user),
                });
            }
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.flush_timer.take() {
            ctx.cancel_future(timer);
        }
        let held = self.orderer.flush();
        if !held.is_empty() {
            tracing::debug!(
                chat_id = %self.chat_id,
                events = held.len(),
                "delivering events after a gap in seq"
            );
        }
        Self::deliver(held);
    }
}

impl Actor for ChatRoom {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        tracing::debug!(chat_id = %self.chat_id, "chat room started");
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        tracing::debug!(chat_id = %self.chat_id, "chat room stopped");
    }
}

impl Handler<PublishEvent> for ChatRoom {
    type Result = ();

    fn handle(&mut self, msg: PublishEvent, ctx: &mut Self::Context) {
        let PublishEvent { event, targets } = msg;
        let (chat_id, seq) = (event.chat_id, event.seq);
        let pending = Pending {
            chat_id,
            seq,
            frames: EventFrames::new(event),
            targets,
        };
        Self::deliver(self.orderer.push(seq, pending));
        if !self.orderer.has_held() {
            if let Some(timer) = self.flush_timer.take() {
                ctx.cancel_future(timer);
            }
        } else if self.flush_timer.is_none() {
            self.flush_timer = Some(ctx.run_later(REORDER_WINDOW, |room, ctx| {
                room.flush_timer = None;
                room.flush(ctx);
            }));
        }
    }
}

impl Handler<StopRoom> for ChatRoom {
    type Result = ();

    fn handle(&mut self, _: StopRoom, ctx: &mut Self::Context) {
        self.flush(ctx);
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs<T>(ready: Vec<(Seq, T)>) -> Vec<Seq> {
        ready.into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn in_order_items_pass_straight_through() {
        let mut o = SeqOrderer::default();
        assert_eq!(seqs(o.push(4, ())), vec![4]);
        assert_eq!(seqs(o.push(5, ())), vec![5]);
        assert!(!o.has_held());
    }

    #[test]
    fn a_later_item_waits_for_the_missing_one() {
        let mut o = SeqOrderer::default();
        assert_eq!(seqs(o.push(1, ())), vec![1]);
        assert!(o.push(3, ()).is_empty());
        assert!(o.push(4, ()).is_empty());
        assert!(o.has_held());
        assert_eq!(seqs(o.push(2, ())), vec![2, 3, 4]);
        assert!(!o.has_held());
        assert_eq!(seqs(o.push(5, ())), vec![5]);
    }

    #[test]
    fn flushing_skips_the_gap_and_late_items_still_arrive() {
        let mut o = SeqOrderer::default();
        o.push(1, ());
        assert!(o.push(3, ()).is_empty());
        assert_eq!(seqs(o.flush()), vec![3]);
        assert_eq!(seqs(o.push(4, ())), vec![4]);
        // 2 turns up after all: delivered, not dropped
        assert_eq!(seqs(o.push(2, ())), vec![2]);
        assert_eq!(seqs(o.push(5, ())), vec![5]);
    }

    #[test]
    fn holding_is_bounded() {
        let mut o = SeqOrderer::default();
        o.push(1, ());
        let mut released = Vec::new();
        for seq in 3..=(3 + MAX_HELD as Seq) {
            released.extend(seqs(o.push(seq, ())));
        }
        assert_eq!(released.len(), MAX_HELD + 1);
        assert!(!o.has_held());
    }
}
