//! `ChatRoom`: one actor per active chat. The hub starts it on the chat's
//! first event and stops it after `websocket.room_idle_secs` without events.
//!
//! Handlers report committed events from their own tasks, so two events
//! committed in one batch may be reported out of order. The room puts them
//! back in seq order (holding a later event briefly while an earlier one is
//! missing), serializes each event once and hands every online session of
//! every member its frame: the same for all, or for a message in envelope
//! version 2 one with only that member's key wrap (`ws::event_frames`).

use crate::gateway::event_frames::EventFrames;
use crate::gateway::messages::{DeliverEvent, PublishEvent, StopRoom};
use actix::prelude::*;
use bytestring::ByteString;
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

/// Each target's frame. The sockets of one member (the hub lists them one
/// after the other) share that member's frame: one buffer per member, not
/// per socket, whatever number of sockets a member opens.
fn frames_for_targets<'a, T>(
    frames: &'a EventFrames,
    targets: &'a [(UserId, T)],
) -> impl Iterator<Item = (ByteString, &'a T)> + 'a {
    let mut last: Option<(UserId, ByteString)> = None;
    targets.iter().map(move |(user, target)| {
        let frame = match &last {
            Some((previous, frame)) if previous == user => frame.clone(),
            _ => {
                let frame = frames.for_member(*user);
                last = Some((*user, frame.clone()));
                frame
            }
        };
        (frame, target)
    })
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
            for (frame, target) in frames_for_targets(&pending.frames, &pending.targets) {
                target.do_send(DeliverEvent {
                    chat_id: pending.chat_id,
                    seq: pending.seq,
                    frame,
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

    /// A message of user 1 in a group of users 1..=3 (envelope version 2:
    /// one frame per member).
    fn group_message() -> ferrogram_core::proto::chat::ChatEvent {
        use ferrogram_core::b64::B64;
        use ferrogram_core::crypto::envelope::seal_payload;
        use ferrogram_core::crypto::Identity;
        use ferrogram_core::proto::chat::{ChatEvent, EventBody};
        use ferrogram_core::proto::{EnvelopeHeader, MessagePayload};
        // TEST KEYS ONLY: one of core's fixed test identities.
        let identity = Identity::from_bytes(
            &B64::decode(include_str!("../../core/src/crypto/testdata/identity-0.b64").trim())
                .unwrap(),
        )
        .unwrap();
        let recipients: Vec<_> = (1..=3)
            .map(|u| (UserId(u), identity.public_keys()))
            .collect();
        let header = EnvelopeHeader {
            chat_id: ChatId(5),
            sender: UserId(1),
            client_msg_id: "m".to_owned(),
            sent_at: 1,
        };
        let envelope = seal_payload(
            &MessagePayload::text("x".repeat(1024)),
            header,
            &identity,
            &recipients,
            &mut rand::rng(),
        )
        .unwrap();
        ChatEvent {
            chat_id: ChatId(5),
            seq: 1,
            sender: UserId(1),
            at: 2,
            body: EventBody::Message {
                client_msg_id: "m".to_owned(),
                envelope,
            },
        }
    }

    #[test]
    fn the_sockets_of_one_member_share_one_frame() {
        let frames = EventFrames::new(group_message());
        let targets: Vec<(UserId, usize)> = [1, 1, 1, 2, 2, 3]
            .iter()
            .enumerate()
            .map(|(socket, user)| (UserId(*user), socket))
            .collect();
        let out: Vec<(ByteString, usize)> = frames_for_targets(&frames, &targets)
            .map(|(frame, socket)| (frame, *socket))
            .collect();
        assert_eq!(
            out.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5]
        );
        let ptr = |i: usize| out[i].0.as_bytes().as_ptr();
        assert_eq!(ptr(0), ptr(1));
        assert_eq!(ptr(0), ptr(2));
        assert_eq!(ptr(3), ptr(4));
        assert_ne!(ptr(0), ptr(3), "each member has a frame of its own");
        assert_ne!(out[0].0, out[3].0);
        assert_ne!(ptr(3), ptr(5));
    }

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
