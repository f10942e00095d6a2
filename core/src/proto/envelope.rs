//! The end-to-end encrypted message envelope as it travels and is stored, and
//! the plaintext payload inside it. Built and opened by `crypto::envelope`;
//! the server only checks its structure (`crypto::envelope::verify_structure`).
//!
//! The JSON here is a transport: what is signed and authenticated is a
//! canonical binary encoding of these fields (see `crypto::envelope`), so
//! re-serializing an envelope never breaks its signature.

use crate::b64::B64;
use crate::ids::{ChatId, Millis, Seq, UserId};
use serde::{Deserialize, Serialize};

/// Format version of [`Envelope`]; bumped on any change to what is signed.
pub const ENVELOPE_VERSION: u32 = 1;

/// One encrypted, signed message (or edit) for every member of a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// [`ENVELOPE_VERSION`].
    pub version: u32,
    pub header: EnvelopeHeader,
    /// SHA-256 fingerprint (32 bytes) of the sender's public keys that signed
    /// this envelope: a receiver sees at once whether it matches the pinned key.
    pub sender_key: B64,
    /// AES-256-GCM nonce (12 bytes).
    pub nonce: B64,
    /// The serialized [`MessagePayload`] sealed with the content key
    /// (ciphertext followed by the 16-byte tag). The header and `sender_key`
    /// are its associated data.
    pub body: B64,
    /// The content key wrapped for every recipient, sorted by user id.
    pub wraps: Vec<KeyWrap>,
    /// RSA-PSS (SHA-256) signature by the sender over everything above.
    pub signature: B64,
}

/// First byte of an envelope's stored form ([`Envelope::to_stored`]).
const STORED_FORMAT: u8 = 1;

/// A stored envelope that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored envelope is unreadable")]
pub struct StoredEnvelopeError;

impl Envelope {
    /// The compact binary form the server stores: a format byte, then the
    /// fields in postcard (lengths as varints, bytes as they are). About
    /// 70 % of the JSON with base64 (2.3 KB instead of 3.3 KB for a 1 KiB
    /// direct message), and cheaper to write and read.
    pub fn to_stored(&self) -> Result<Vec<u8>, StoredEnvelopeError> {
        postcard::to_extend(self, vec![STORED_FORMAT]).map_err(|_| StoredEnvelopeError)
    }

    /// Reads [`Envelope::to_stored`]'s output; anything else (another
    /// format byte, trailing bytes, a truncated field) is an error.
    pub fn from_stored(bytes: &[u8]) -> Result<Envelope, StoredEnvelopeError> {
        match bytes.split_first() {
            Some((&STORED_FORMAT, rest)) => match postcard::take_from_bytes(rest) {
                Ok((envelope, [])) => Ok(envelope),
                _ => Err(StoredEnvelopeError),
            },
            _ => Err(StoredEnvelopeError),
        }
    }
}

/// Who sent what where and when: readable by the server, authenticated by the
/// AEAD and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeHeader {
    pub chat_id: ChatId,
    pub sender: UserId,
    /// 1-64 characters chosen by the sending client; the same as in the
    /// `message.send` request, so a retry is recognised.
    pub client_msg_id: String,
    /// When the sender's client sealed it.
    pub sent_at: Millis,
}

/// The content key for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyWrap {
    pub user_id: UserId,
    /// Fingerprint (32 bytes) of the recipient's public keys used to wrap.
    pub key_id: B64,
    /// RSA-OAEP (SHA-256) encryption of the 32-byte content key.
    pub wrapped_key: B64,
}

/// What a message is. New kinds (files, stickers...) are added here; a client
/// that does not know a kind shows a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Text,
}

/// The plaintext inside an envelope's body (JSON, then sealed). Unknown
/// fields are ignored, so newer clients can add some without breaking older ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePayload {
    pub kind: MessageKind,
    /// Markdown source; emoji are plain Unicode.
    pub text: String,
    /// The chat sequence number of the message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Seq>,
}

impl MessagePayload {
    /// A plain text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            kind: MessageKind::Text,
            text: text.into(),
            reply_to: None,
        }
    }
}
