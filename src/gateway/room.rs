//! `ChatRoom`: one actor per active chat. The hub starts it on the chat's
//! first event and stops it after `websocket.room_idle_secs` without events.
//!
//! Committed events reach it in seq order (from the event writer's thread,
//! through the hub). The room serializes each event once and hands every
//! online connection of every member its frame: the same for all, or for a
//! message in envelope version 2 one with only that member's key wrap
//! (`gateway::event_frames`).

use crate::gateway::event_frames::EventFrames;
use crate::gateway::messages::{DeliverEvent, PublishEvent, StopRoom};
use actix::prelude::*;
use bytestring::ByteString;
use ferrogram_core::ids::{ChatId, UserId};

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
}

impl ChatRoom {
    pub fn new(chat_id: ChatId) -> Self {
        Self { chat_id }
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

    /// Events come in commit order (the writer's thread announces each
    /// batch's events in seq order, one hub message per batch, and actor
    /// mailboxes keep order), so each is delivered as it comes.
    fn handle(&mut self, msg: PublishEvent, _ctx: &mut Self::Context) {
        let PublishEvent { event, targets } = msg;
        let (chat_id, seq) = (event.chat_id, event.seq);
        let frames = EventFrames::new(event);
        for (frame, target) in frames_for_targets(&frames, &targets) {
            target.do_send(DeliverEvent {
                chat_id,
                seq,
                frame,
            });
        }
    }
}

impl Handler<StopRoom> for ChatRoom {
    type Result = ();

    fn handle(&mut self, _: StopRoom, ctx: &mut Self::Context) {
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
        use ferrogram_core::ids::{Seq, Timestamp};
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
            sent_at: Timestamp::from_millis(1),
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
            seq: Seq::new(1),
            sender: UserId(1),
            at: Timestamp::from_millis(2),
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
}
