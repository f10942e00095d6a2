//! The chats a run sends to and the message frames it sends, prepared
//! before the measured phase so that the generator is not the bottleneck.
//!
//! How envelopes are prepared: before the run, one real envelope is sealed
//! (`core::crypto::envelope::seal_payload`) with a random content key for the
//! handful of shared identities, which yields one real RSA-OAEP wrap of that
//! key per identity, a real AES-256-GCM body of the chosen size, a nonce and
//! a signature. Each chat then gets a frame template: a `message.send`
//! command whose envelope names the chat and has exactly one wrap per
//! member (sorted by user id, each the wrap for that member's identity, with
//! its key id). Per message only the request id, the `client_msg_id` (twice),
//! `sent_at`, the sender and the sender's key id are spliced in: a string
//! concatenation, no crypto and no JSON serialization.
//!
//! These envelopes pass every check the server makes (structure, origin,
//! wraps for exactly the current members, sizes). Because the header changes
//! after sealing, the signature and the AEAD tag no longer match it: a real
//! client would reject them as forged, and the generator never decrypts.
//! Signing every message for real (an RSA-3072 private-key operation, a few
//! milliseconds) would cap the generator near a thousand messages per
//! second per core.

use super::declared::command_frame;
use super::schedule::FastRng;
use ferrogram_core::b64::B64;
use ferrogram_core::commands::SendMessage;
use ferrogram_core::crypto::envelope::seal_payload;
use ferrogram_core::crypto::fingerprint::fingerprint_bytes;
use ferrogram_core::crypto::Identity;
use ferrogram_core::ids::{ChatId, Timestamp, UserId};
use ferrogram_core::proto::{
    Envelope, EnvelopeHeader, KeyWrap, MessagePayload, SendMessageRequest,
};
use std::fmt::Write as _;

/// Placeholders serialized into a template and cut out again. Numbers near
/// 2^53 that no real id or time reaches.
const ID_MARK: u64 = 9_007_199_254_740_881;
const SENDER_MARK: i64 = 9_007_199_254_740_882;
const SENT_AT_MARK: i64 = 9_007_199_254_740_883;
const CMID_MARK: &str = "CMIDPLACEHOLDER";
const SENDER_KEY_BYTE: u8 = 0xAB;

/// What a run sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// 1:1 messages: each user has `peers` direct chats, each message goes
    /// to one of the sender's chats at random.
    Direct { peers: usize },
    /// Users are split into groups of `size`; each message goes to the
    /// sender's group.
    Group { size: usize },
    /// Both: a message is a group message with probability `group_share`.
    Mixed {
        peers: usize,
        size: usize,
        group_share: f64,
    },
}

impl Kind {
    pub fn name(&self) -> String {
        match self {
            Kind::Direct { peers } => format!("direct (1:1, {peers} peers each)"),
            Kind::Group { size } => format!("group (size {size})"),
            Kind::Mixed {
                peers,
                size,
                group_share,
            } => format!(
                "mixed ({:.0}% group of size {size}, else 1:1 with {peers} peers)",
                group_share * 100.0
            ),
        }
    }

    pub fn peers(&self) -> usize {
        match *self {
            Kind::Direct { peers } | Kind::Mixed { peers, .. } => peers,
            Kind::Group { .. } => 0,
        }
    }

    pub fn group_size(&self) -> usize {
        match *self {
            Kind::Group { size } | Kind::Mixed { size, .. } => size,
            Kind::Direct { .. } => 2,
        }
    }
}

/// The direct-chat pairs of `users` users with `peers` peers each: user i
/// with i+1 .. i+peers/2 (mod n), each pair once.
pub fn direct_pairs(users: usize, peers: usize) -> Vec<(usize, usize)> {
    let mut pairs = std::collections::BTreeSet::new();
    for i in 0..users {
        for k in 1..=peers.div_ceil(2) {
            let j = (i + k) % users;
            if j != i {
                pairs.insert((i.min(j), i.max(j)));
            }
        }
    }
    pairs.into_iter().collect()
}

/// Consecutive groups of `size` users; a remainder of fewer than 2 users
/// joins no group.
pub fn groups(users: usize, size: usize) -> Vec<Vec<usize>> {
    (0..users)
        .collect::<Vec<_>>()
        .chunks(size.max(2))
        .filter(|c| c.len() >= 2)
        .map(<[usize]>::to_vec)
        .collect()
}

/// One piece of a frame template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    RequestId,
    ClientMsgId,
    SentAt,
    Sender,
    SenderKey,
}

/// A `message.send` frame with holes for what changes per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    len_hint: usize,
}

/// The values of one message.
pub struct Render<'a> {
    /// Random per generator process: client message ids never repeat across
    /// runs (the server would answer a repeated one as a retry, unsent).
    pub run: u32,
    pub request_id: u64,
    pub phase: u64,
    pub index: u64,
    pub due_us: u64,
    pub sender: i64,
    /// The sender's key id, base64 as in JSON (without quotes).
    pub sender_key: &'a str,
}

impl Template {
    /// Cuts a serialized frame at the placeholders.
    fn from_frame(frame: &str) -> Template {
        let marks = [
            (ID_MARK.to_string(), Piece::RequestId),
            (CMID_MARK.to_owned(), Piece::ClientMsgId),
            (SENT_AT_MARK.to_string(), Piece::SentAt),
            (SENDER_MARK.to_string(), Piece::Sender),
            (b64_text(&[SENDER_KEY_BYTE; 32]), Piece::SenderKey),
        ];
        let mut pieces = Vec::new();
        let mut rest = frame;
        loop {
            let next = marks
                .iter()
                .filter_map(|(mark, piece)| rest.find(mark.as_str()).map(|at| (at, mark, piece)))
                .min_by_key(|(at, ..)| *at);
            let Some((at, mark, piece)) = next else {
                if !rest.is_empty() {
                    pieces.push(Piece::Text(rest.to_owned()));
                }
                break;
            };
            if at > 0 {
                pieces.push(Piece::Text(rest[..at].to_owned()));
            }
            pieces.push(piece.clone());
            rest = &rest[at + mark.len()..];
        }
        Template {
            pieces,
            len_hint: frame.len() + 64,
        }
    }

    /// Writes one message's frame into `out`.
    pub fn render(&self, out: &mut String, v: &Render<'_>) {
        out.reserve(self.len_hint);
        for piece in &self.pieces {
            let _ = match piece {
                Piece::Text(text) => {
                    out.push_str(text);
                    Ok(())
                }
                Piece::RequestId => write!(out, "{}", v.request_id),
                Piece::ClientMsgId => {
                    write!(out, "{:x}.{}.{}.{}", v.run, v.phase, v.index, v.due_us)
                }
                // The planned time, in ms like every Timestamp.
                Piece::SentAt => write!(out, "{}", v.due_us / 1000),
                Piece::Sender => write!(out, "{}", v.sender),
                Piece::SenderKey => {
                    out.push_str(v.sender_key);
                    Ok(())
                }
            };
        }
    }
}

/// Base64 of `bytes` as the protocol writes it in JSON (without quotes).
fn b64_text(bytes: &[u8]) -> String {
    B64::encode(bytes)
}

/// What one real seal yields, for every identity.
pub struct Sealed {
    /// Per identity: its key id and the content key wrapped for it.
    pub wraps: Vec<(B64, B64)>,
    pub nonce: B64,
    pub body: B64,
    pub signature: B64,
    /// Per identity: the key id as base64 text, for the sender's key.
    pub sender_keys: Vec<String>,
}

/// Seals one message of `message_bytes` characters for all identities.
pub fn seal_once(identities: &[Identity], message_bytes: usize) -> Result<Sealed, String> {
    let recipients: Vec<(UserId, _)> = identities
        .iter()
        .enumerate()
        .map(|(i, id)| (UserId(i as i64 + 1), id.public_keys()))
        .collect();
    let header = EnvelopeHeader {
        chat_id: ChatId(1),
        sender: UserId(1),
        client_msg_id: "loadgen-template".to_owned(),
        sent_at: Timestamp::EPOCH,
    };
    let payload = MessagePayload::text("x".repeat(message_bytes));
    let envelope = seal_payload(
        &payload,
        header,
        &identities[0],
        &recipients,
        &mut rand::rng(),
    )
    .map_err(|e| format!("cannot seal the template message: {e}"))?;
    let mut wraps = vec![(B64::default(), B64::default()); identities.len()];
    for wrap in envelope.wraps {
        wraps[(wrap.user_id.0 - 1) as usize] = (wrap.key_id, wrap.wrapped_key);
    }
    Ok(Sealed {
        wraps,
        nonce: envelope.nonce,
        body: envelope.body,
        signature: envelope.signature,
        sender_keys: identities
            .iter()
            .map(|id| b64_text(&fingerprint_bytes(&id.public_keys())))
            .collect(),
    })
}

/// The frame template of a chat whose members are `(user id, identity)`:
/// the `message.send` frame of the declaration (`command_frame`), serialized
/// once with placeholders, then cut at them.
pub fn chat_template(
    chat_id: i64,
    members: &[(i64, usize)],
    sealed: &Sealed,
) -> Result<Template, String> {
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    let envelope = Envelope {
        version: ferrogram_core::proto::envelope::ENVELOPE_VERSION,
        header: EnvelopeHeader {
            chat_id: ChatId(chat_id),
            sender: UserId(SENDER_MARK),
            client_msg_id: CMID_MARK.to_owned(),
            sent_at: Timestamp::from_millis(SENT_AT_MARK),
        },
        sender_key: B64(vec![SENDER_KEY_BYTE; 32]),
        nonce: sealed.nonce.clone(),
        body: sealed.body.clone(),
        wraps: sorted
            .iter()
            .map(|&(user_id, identity)| KeyWrap {
                user_id: UserId(user_id),
                key_id: sealed.wraps[identity].0.clone(),
                wrapped_key: sealed.wraps[identity].1.clone(),
            })
            .collect(),
        signature: sealed.signature.clone(),
        wrap_proof: None,
    };
    let request = SendMessageRequest {
        chat_id: ChatId(chat_id),
        client_msg_id: CMID_MARK.to_owned(),
        envelope,
    };
    let frame = command_frame::<SendMessage>(ID_MARK, &request)
        .map_err(|e| format!("cannot serialize the message template: {e}"))?;
    Ok(Template::from_frame(&frame))
}

/// One chat of the run.
pub struct ChatPlan {
    pub chat_id: i64,
    /// A group (else a direct chat).
    pub group: bool,
    /// Members as indices into the run's users.
    pub members: Vec<usize>,
    pub template: Template,
}

impl ChatPlan {
    /// Receipts one message gets: every member but the sender.
    pub fn recipients(&self) -> usize {
        self.members.len().saturating_sub(1)
    }
}

/// Everything the generator needs to pick and render messages.
pub struct Workload {
    pub kind: Kind,
    pub chats: Vec<ChatPlan>,
    pub user_ids: Vec<i64>,
    pub identity_of: Vec<usize>,
    pub sender_keys: Vec<String>,
    /// Per user: their direct chats (indices into `chats`).
    pub direct_of: Vec<Vec<u32>>,
    /// Per user: their group (index into `chats`).
    pub group_of: Vec<Option<u32>>,
    direct_senders: Vec<usize>,
    group_senders: Vec<usize>,
}

impl Workload {
    pub fn new(
        kind: Kind,
        chats: Vec<ChatPlan>,
        user_ids: Vec<i64>,
        identity_of: Vec<usize>,
        sender_keys: Vec<String>,
    ) -> Self {
        let n = user_ids.len();
        let mut direct_of = vec![Vec::new(); n];
        let mut group_of = vec![None; n];
        for (index, chat) in chats.iter().enumerate() {
            for &member in &chat.members {
                if chat.group {
                    group_of[member] = Some(index as u32);
                } else {
                    direct_of[member].push(index as u32);
                }
            }
        }
        let direct_senders = (0..n).filter(|&u| !direct_of[u].is_empty()).collect();
        let group_senders = (0..n).filter(|&u| group_of[u].is_some()).collect();
        Self {
            kind,
            chats,
            user_ids,
            identity_of,
            sender_keys,
            direct_of,
            group_of,
            direct_senders,
            group_senders,
        }
    }

    /// A sender and one of their chats, at random.
    pub fn pick(&self, rng: &mut FastRng) -> Option<(usize, u32)> {
        let group = match self.kind {
            Kind::Direct { .. } => false,
            Kind::Group { .. } => true,
            Kind::Mixed { group_share, .. } => rng.chance(group_share),
        };
        if group && !self.group_senders.is_empty() {
            let user = self.group_senders[rng.below(self.group_senders.len())];
            return Some((user, self.group_of[user]?));
        }
        if self.direct_senders.is_empty() {
            return None;
        }
        let user = self.direct_senders[rng.below(self.direct_senders.len())];
        let chats = &self.direct_of[user];
        Some((user, chats[rng.below(chats.len())]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogram_core::command::Command;
    use ferrogram_core::proto::ws::ClientFrame;

    #[test]
    fn pairs_and_groups_cover_users_as_asked() {
        let pairs = direct_pairs(10, 4);
        assert_eq!(pairs.len(), 20, "10 users x 4 peers / 2");
        let mut degree = [0; 10];
        for (a, b) in &pairs {
            assert!(a < b);
            degree[*a] += 1;
            degree[*b] += 1;
        }
        assert!(degree.iter().all(|d| *d == 4), "{degree:?}");
        // tiny runs: no self pairs, no duplicates
        assert_eq!(direct_pairs(2, 4), vec![(0, 1)]);
        assert!(direct_pairs(1, 4).is_empty());
        let g = groups(10, 4);
        assert_eq!(g, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
        assert_eq!(groups(9, 4).len(), 2, "a lone remainder joins no group");
    }

    fn fake_sealed(identities: usize) -> Sealed {
        Sealed {
            wraps: (0..identities)
                .map(|i| (B64(vec![i as u8; 32]), B64(vec![0x11; 384])))
                .collect(),
            nonce: B64(vec![2; 12]),
            body: B64(vec![3; 80]),
            signature: B64(vec![4; 384]),
            sender_keys: (0..identities).map(|i| b64_text(&[i as u8; 32])).collect(),
        }
    }

    #[test]
    fn a_rendered_frame_is_a_valid_send_command_with_wraps_for_exactly_the_members() {
        let sealed = fake_sealed(2);
        let template = chat_template(42, &[(9, 1), (3, 0), (5, 1)], &sealed).unwrap();
        let mut out = String::new();
        template.render(
            &mut out,
            &Render {
                run: 0xbeef,
                request_id: 77,
                phase: 2,
                index: 15,
                due_us: 123_456,
                sender: 5,
                sender_key: &sealed.sender_keys[1],
            },
        );
        let frame: ClientFrame = serde_json::from_str(&out).unwrap();
        let ClientFrame::Command { id, command, body } = frame else {
            panic!("not a command: {out}");
        };
        assert_eq!((id, command.as_str()), (77, SendMessage::NAME));
        let req: SendMessageRequest = serde_json::from_value(body).unwrap();
        assert_eq!(req.chat_id, ChatId(42));
        assert_eq!(req.client_msg_id, "beef.2.15.123456");
        assert_eq!(
            parse_ids(&req.envelope.header.client_msg_id),
            (0xbeef, 2, 15, 123_456)
        );
        assert_eq!(req.envelope.header.chat_id, ChatId(42));
        assert_eq!(req.envelope.header.sender, UserId(5));
        assert_eq!(req.envelope.header.sent_at, Timestamp::from_millis(123));
        assert_eq!(req.envelope.sender_key, B64(vec![1; 32]));
        let wrapped: Vec<i64> = req.envelope.wraps.iter().map(|w| w.user_id.0).collect();
        assert_eq!(wrapped, vec![3, 5, 9], "sorted, one per member");
        assert_eq!(req.envelope.wraps[0].key_id, B64(vec![0; 32]));
        assert_eq!(req.envelope.wraps[1].key_id, B64(vec![1; 32]));
        // what the server checks
        ferrogram_core::crypto::envelope::verify_structure(
            &req.envelope,
            &[UserId(3), UserId(5), UserId(9)],
            64 * 1024,
        )
        .unwrap();
        ferrogram_core::crypto::envelope::verify_origin(&req.envelope, ChatId(42), UserId(5))
            .unwrap();
    }

    fn parse_ids(id: &str) -> (u32, u64, u64, u64) {
        super::super::conn::parse_client_msg_id(id).unwrap()
    }

    fn plan(chat_id: i64, members: Vec<usize>) -> ChatPlan {
        ChatPlan {
            chat_id,
            group: members.len() > 2,
            members,
            template: Template {
                pieces: Vec::new(),
                len_hint: 0,
            },
        }
    }

    #[test]
    fn picks_follow_the_workload() {
        let users = 6;
        let ids = (1..=6).collect();
        let direct: Vec<ChatPlan> = direct_pairs(users, 2)
            .into_iter()
            .enumerate()
            .map(|(i, (a, b))| plan(i as i64, vec![a, b]))
            .collect();
        let w = Workload::new(Kind::Direct { peers: 2 }, direct, ids, vec![0; 6], vec![]);
        let mut rng = FastRng::new(1);
        for _ in 0..1000 {
            let (user, chat) = w.pick(&mut rng).unwrap();
            assert!(w.chats[chat as usize].members.contains(&user));
        }
        let mut chats = vec![plan(1, vec![0, 1, 2]), plan(2, vec![3, 4, 5])];
        chats.push(plan(3, vec![0, 3]));
        let w = Workload::new(
            Kind::Mixed {
                peers: 1,
                size: 3,
                group_share: 0.5,
            },
            chats,
            (1..=6).collect(),
            vec![0; 6],
            vec![],
        );
        let (mut group, mut direct) = (0, 0);
        for _ in 0..2000 {
            let (user, chat) = w.pick(&mut rng).unwrap();
            assert!(w.chats[chat as usize].members.contains(&user));
            if chat == 2 {
                direct += 1;
            } else {
                group += 1;
            }
        }
        assert!(
            (800..1200).contains(&group),
            "{group} group, {direct} direct"
        );
    }
}
