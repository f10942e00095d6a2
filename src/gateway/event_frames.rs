//! The frames of one committed chat event for the members it goes to.
//!
//! Most events are the same for everyone: one frame, shared. A message or an
//! edit in envelope version 2 is not: each member gets only its own key wrap
//! and that wrap's path in the sender's hash tree (`wrap_proof`, see
//! `ferrogram_core::crypto::wrap_tree`), so a member of a group of 100 gets
//! about 3.4 KB instead of 63 KB. The event is serialized once with no wraps;
//! each member's frame is that text with the member's wrap and proof spliced
//! in, so no member costs a serialization of the whole event.

use crate::gateway::transport::frame::encode;
use bytestring::ByteString;
use ferrogram_core::crypto::wrap_tree::WrapTree;
use ferrogram_core::ids::UserId;
use ferrogram_core::proto::chat::{ChatEvent, EventBody};
use ferrogram_core::proto::ws::ServerFrame;
use ferrogram_core::proto::{Envelope, KeyWrap};

/// Where the (emptied) wraps array sits in the serialized event. It cannot
/// occur inside a JSON string (the quotes there are escaped), and the
/// envelope is the only object with a `wraps` field.
const EMPTY_WRAPS: &str = r#""wraps":[]"#;

pub struct EventFrames {
    kind: Kind,
}

enum Kind {
    /// The same frame for everyone.
    Shared(ByteString),
    /// One frame per member, each with only that member's wrap.
    PerMember(Splice),
}

struct Splice {
    /// The frame up to and including `"wraps":[`.
    before: String,
    /// The rest of the frame after the wraps array's `]`.
    after: String,
    /// All wraps, in the envelope's order (sorted by user id).
    wraps: Vec<KeyWrap>,
    tree: WrapTree,
}

impl EventFrames {
    pub fn new(mut event: ChatEvent) -> Self {
        let cut = match &event.body {
            EventBody::Message { envelope, .. } | EventBody::Edit { envelope, .. } => {
                can_cut(envelope)
            }
            _ => false,
        };
        if !cut {
            return Self::shared(event);
        }
        let wraps = match &mut event.body {
            EventBody::Message { envelope, .. } | EventBody::Edit { envelope, .. } => {
                std::mem::take(&mut envelope.wraps)
            }
            _ => Vec::new(),
        };
        let text = encode(&ServerFrame::Event { event });
        let Some(at) = text.find(EMPTY_WRAPS) else {
            // Not the frame we expect; everyone gets the whole event instead.
            tracing::error!("event frame without a wraps field");
            return match event_back(&text, wraps) {
                Some(event) => Self::shared(event),
                None => Self {
                    kind: Kind::Shared(text),
                },
            };
        };
        let split = at + EMPTY_WRAPS.len() - 1;
        let tree = WrapTree::new(&wraps);
        Self {
            kind: Kind::PerMember(Splice {
                before: text[..split].to_owned(),
                after: text[split + 1..].to_owned(),
                wraps,
                tree,
            }),
        }
    }

    fn shared(event: ChatEvent) -> Self {
        Self {
            kind: Kind::Shared(encode(&ServerFrame::Event { event })),
        }
    }

    /// The frame for `user`. A member the envelope has no wrap for (which
    /// the writer's checks rule out) gets the whole event.
    pub fn for_member(&self, user: UserId) -> ByteString {
        match &self.kind {
            Kind::Shared(frame) => frame.clone(),
            Kind::PerMember(splice) => splice.for_member(user),
        }
    }
}

impl Splice {
    fn for_member(&self, user: UserId) -> ByteString {
        let found = self
            .wraps
            .binary_search_by_key(&user, |wrap| wrap.user_id)
            .ok()
            .and_then(|index| Some((self.wraps.get(index)?, self.tree.proof(index)?)));
        let Some((wrap, proof)) = found else {
            return self.whole();
        };
        let (Ok(wrap), Ok(proof)) = (serde_json::to_string(wrap), serde_json::to_string(&proof))
        else {
            return self.whole();
        };
        let mut text = String::with_capacity(
            self.before.len() + wrap.len() + proof.len() + self.after.len() + 16,
        );
        text.push_str(&self.before);
        text.push_str(&wrap);
        text.push_str(r#"],"wrap_proof":"#);
        text.push_str(&proof);
        // `after` starts right after the array: `,"signature":...` or `}`.
        text.push_str(&self.after);
        text.into()
    }

    /// The event with every wrap and no proof: what version 1 sent everyone.
    fn whole(&self) -> ByteString {
        let wraps = serde_json::to_string(&self.wraps).unwrap_or_else(|_| "[]".to_owned());
        // `wraps` is `[...]`; `before` ends with `[`.
        format!(
            "{}{}{}",
            &self.before[..self.before.len() - 1],
            wraps,
            self.after
        )
        .into()
    }
}

/// Only a version 2 envelope without a proof can be cut down (the signature
/// of version 1 covers every wrap).
fn can_cut(envelope: &Envelope) -> bool {
    envelope.version >= 2 && envelope.wrap_proof.is_none() && !envelope.wraps.is_empty()
}

/// Rebuilds the event from its frame text with `wraps` put back.
fn event_back(text: &str, wraps: Vec<KeyWrap>) -> Option<ChatEvent> {
    let frame: ServerFrame = serde_json::from_str(text).ok()?;
    let ServerFrame::Event { mut event } = frame else {
        return None;
    };
    if let EventBody::Message { envelope, .. } | EventBody::Edit { envelope, .. } = &mut event.body
    {
        envelope.wraps = wraps;
    }
    Some(event)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ferrogram_core::b64::B64;
    use ferrogram_core::crypto::envelope::{open_payload, seal_payload, verify_signature};
    use ferrogram_core::crypto::Identity;
    use ferrogram_core::ids::{ChatId, Seq, Timestamp};
    use ferrogram_core::proto::{EnvelopeHeader, MessagePayload};

    /// TEST KEYS ONLY: two of core's fixed test identities.
    fn identity(n: usize) -> Identity {
        let text = [
            include_str!("../../core/src/crypto/testdata/identity-0.b64"),
            include_str!("../../core/src/crypto/testdata/identity-1.b64"),
        ][n];
        Identity::from_bytes(&B64::decode(text.trim()).unwrap()).unwrap()
    }

    /// A message from user 1 to users 1..=members; even users hold identity
    /// 0, odd ones identity 1.
    fn group_message(members: i64, ids: &[Identity; 2]) -> ChatEvent {
        let recipients: Vec<_> = (1..=members)
            .map(|u| (UserId(u), ids[(u % 2) as usize].public_keys()))
            .collect();
        let header = EnvelopeHeader {
            chat_id: ChatId(5),
            sender: UserId(1),
            client_msg_id: r#"tricky "wraps":[] id"#.to_owned(),
            sent_at: Timestamp::from_millis(1),
        };
        let envelope = seal_payload(
            &MessagePayload::text("x".repeat(1024)),
            header,
            &ids[1],
            &recipients,
            &mut rand::rng(),
        )
        .unwrap();
        ChatEvent {
            chat_id: ChatId(5),
            seq: Seq::new(9),
            sender: UserId(1),
            at: Timestamp::from_millis(2),
            body: EventBody::Message {
                client_msg_id: r#"tricky "wraps":[] id"#.to_owned(),
                envelope,
            },
        }
    }

    fn envelope_of(frame: &str) -> Envelope {
        match serde_json::from_str::<ServerFrame>(frame).unwrap() {
            ServerFrame::Event { event } => match event.body {
                EventBody::Message { envelope, .. } => envelope,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_member_gets_only_its_own_wrap_and_opens_it() {
        let ids = [identity(0), identity(1)];
        let event = group_message(100, &ids);
        let whole = encode(&ServerFrame::Event {
            event: event.clone(),
        });
        let frames = EventFrames::new(event);
        for user in [1, 2, 50, 99, 100] {
            let frame = frames.for_member(UserId(user));
            // 100 wraps of ~0.6 KB each stay behind.
            assert!(
                frame.len() * 10 < whole.len(),
                "{} of {}",
                frame.len(),
                whole.len()
            );
            let envelope = envelope_of(&frame);
            assert_eq!(envelope.wraps.len(), 1);
            assert_eq!(envelope.wraps[0].user_id, UserId(user));
            assert_eq!(envelope.wrap_proof.as_ref().unwrap().count, 100);
            assert_eq!(envelope.header.client_msg_id, r#"tricky "wraps":[] id"#);
            verify_signature(&envelope, &ids[1].public_keys()).unwrap();
            let payload = open_payload(
                &envelope,
                UserId(user),
                &ids[(user % 2) as usize],
                &ids[1].public_keys(),
            )
            .unwrap();
            assert_eq!(payload.text.len(), 1024);
        }
        // Someone the envelope has no wrap for gets the whole event, as sealed.
        assert_eq!(frames.for_member(UserId(101)), whole);
    }

    #[test]
    fn the_live_frame_is_what_history_and_resume_give_the_same_member() {
        // History and resume send `event_for_reader` (through
        // `storage::chats::visible_events`); the live splice must agree with
        // it (field order aside), so a member sees the same in all three.
        use ferrogram_core::crypto::envelope::event_for_reader;
        let ids = [identity(0), identity(1)];
        let event = group_message(100, &ids);
        let frames = EventFrames::new(event.clone());
        for user in [1, 2, 37, 64, 100] {
            let read = serde_json::to_value(ServerFrame::Event {
                event: event_for_reader(event.clone(), UserId(user)),
            })
            .unwrap();
            let live: serde_json::Value =
                serde_json::from_str(&frames.for_member(UserId(user))).unwrap();
            assert_eq!(live, read, "member {user}");
        }
    }

    #[test]
    fn other_events_are_one_shared_frame() {
        let ids = [identity(0), identity(1)];
        let mut event = group_message(3, &ids);
        if let EventBody::Message { envelope, .. } = &mut event.body {
            // Version 1: its signature covers every wrap, so nothing is cut.
            envelope.version = 1;
        }
        let whole = encode(&ServerFrame::Event {
            event: event.clone(),
        });
        let frames = EventFrames::new(event);
        assert_eq!(frames.for_member(UserId(2)), whole);

        let rename = ChatEvent {
            chat_id: ChatId(5),
            seq: Seq::new(10),
            sender: UserId(1),
            at: Timestamp::from_millis(3),
            body: EventBody::Renamed {
                title: "t".to_owned(),
            },
        };
        let whole = encode(&ServerFrame::Event {
            event: rename.clone(),
        });
        assert_eq!(EventFrames::new(rename).for_member(UserId(2)), whole);
    }
}
