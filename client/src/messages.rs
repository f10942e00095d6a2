//! The decrypted messages, edits and deletions of a chat with how far each
//! can be trusted: what the [`Messenger`](crate::Messenger) reports and the
//! [`Store`](crate::Store) keeps. Neither owns them, so the store needs
//! nothing from the messenger. Every type serializes to JSON
//! (ferrogram-cli `--json`).

use ferrogram_core::ids::{ChatId, Seq, Timestamp, UserId};
use ferrogram_core::proto::MessagePayload;
use serde::{Deserialize, Serialize};

/// How far a received message (or edit) can be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Verification {
    /// Sent by this account (signed with its own key).
    Own,
    /// Signed with the sender's pinned key, which the user compared in person
    /// ([`Messenger::mark_verified`](crate::Messenger::mark_verified)).
    Verified,
    /// Signed with the sender's pinned key (pinned on first use, not compared).
    Trusted,
    /// Signed with a key other than the pinned one that the server now lists
    /// for the sender: a key change, or an impostor. Decrypted and shown, but
    /// flagged until the user accepts the new key
    /// ([`Messenger::accept_key_change`](crate::Messenger::accept_key_change)).
    KeyChanged {
        /// The new, not yet accepted key.
        fingerprint: String,
    },
    /// Refused: tampered, forged, replayed, signed by an unknown key, or not
    /// decryptable by this account. There is no payload.
    Invalid { reason: String },
}

impl Verification {
    /// True for own messages and messages signed with the pinned key.
    pub fn is_trusted(&self) -> bool {
        matches!(self, Self::Own | Self::Verified | Self::Trusted)
    }

    /// The name used in the local store and in JSON (`"trusted"`...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Own => "own",
            Self::Verified => "verified",
            Self::Trusted => "trusted",
            Self::KeyChanged { .. } => "key_changed",
            Self::Invalid { .. } => "invalid",
        }
    }
}

/// A message as this account received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub chat_id: ChatId,
    pub seq: Seq,
    pub sender: UserId,
    pub client_msg_id: String,
    /// When the sender sealed it (the sender's clock, signed).
    pub sent_at: Timestamp,
    /// When the server stored it.
    pub at: Timestamp,
    /// The decrypted content; `None` when [`Verification::Invalid`] or deleted.
    pub payload: Option<MessagePayload>,
    pub verification: Verification,
    /// The seq of the newest edit applied to it, if any.
    pub edited_seq: Option<Seq>,
    pub deleted: bool,
}

impl Message {
    /// The text to show, if the message has one.
    pub fn text(&self) -> Option<&str> {
        self.payload.as_ref().map(|p| p.text.as_str())
    }
}

/// A new version of an earlier message (its `target_seq`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEdit {
    pub chat_id: ChatId,
    /// The edit's own seq.
    pub seq: Seq,
    pub target_seq: Seq,
    pub sender: UserId,
    pub at: Timestamp,
    pub payload: Option<MessagePayload>,
    pub verification: Verification,
}

/// A message deleted for everyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDeletion {
    pub chat_id: ChatId,
    pub seq: Seq,
    pub target_seq: Seq,
    pub sender: UserId,
    pub at: Timestamp,
}
