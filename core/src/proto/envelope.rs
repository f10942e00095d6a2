//! The end-to-end encrypted message envelope as it travels and is stored, and
//! the plaintext payload inside it. Built and opened by `crypto::envelope`;
//! the server only checks its structure (`crypto::envelope::verify_structure`).
//!
//! The JSON here is a transport: what is signed and authenticated is a
//! canonical binary encoding of these fields (see `crypto::envelope`), so
//! re-serializing an envelope never breaks its signature.

use crate::b64::B64;
use crate::ids::{ChatId, Seq, Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// Format version of [`Envelope`]; bumped on any change to what is signed.
/// Version 2 signs the root of a hash tree over the wraps instead of every
/// wrap (`crypto::wrap_tree`), so a member can be sent only its own wrap.
/// Version 1 envelopes (stored before) still open.
pub const ENVELOPE_VERSION: u32 = 2;

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
    /// The content key wrapped for every recipient, sorted by user id. In a
    /// delivered version 2 envelope (`wrap_proof` set): only the reader's wrap.
    pub wraps: Vec<KeyWrap>,
    /// RSA-PSS (SHA-256) signature by the sender over everything above (in
    /// version 2, over the wraps' hash tree root and count).
    pub signature: B64,
    /// Set by the server when it sends a member only that member's wrap: where
    /// the wrap sits in the sender's hash tree. Never sent by a sender, never
    /// stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap_proof: Option<WrapProof>,
}

/// A member's wrap's place in the hash tree over all wraps of a version 2
/// envelope (`crypto::wrap_tree`): enough to check the signature with that
/// one wrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrapProof {
    /// The wrap's position among all the envelope's wraps (sorted by user id).
    pub index: u32,
    /// How many wraps the sender sealed.
    pub count: u32,
    /// The sibling hashes (32 bytes each) from the leaf up to the root.
    pub path: Vec<B64>,
}

/// The fields of an envelope in the stored form, in their order. A delivery's
/// `wrap_proof` is never stored, and postcard cannot skip a field, so the
/// stored form has its own shape (the one rows were first written in).
#[derive(Serialize)]
struct StoredRef<'a> {
    version: u32,
    header: &'a EnvelopeHeader,
    sender_key: &'a B64,
    nonce: &'a B64,
    body: &'a B64,
    wraps: &'a [KeyWrap],
    signature: &'a B64,
}

#[derive(Deserialize)]
struct StoredOwned {
    version: u32,
    header: EnvelopeHeader,
    sender_key: B64,
    nonce: B64,
    body: B64,
    wraps: Vec<KeyWrap>,
    signature: B64,
}

impl From<StoredOwned> for Envelope {
    fn from(stored: StoredOwned) -> Self {
        Envelope {
            version: stored.version,
            header: stored.header,
            sender_key: stored.sender_key,
            nonce: stored.nonce,
            body: stored.body,
            wraps: stored.wraps,
            signature: stored.signature,
            wrap_proof: None,
        }
    }
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
    /// A `wrap_proof` is not part of it (see [`WrapProof`]).
    pub fn to_stored(&self) -> Result<Vec<u8>, StoredEnvelopeError> {
        let stored = StoredRef {
            version: self.version,
            header: &self.header,
            sender_key: &self.sender_key,
            nonce: &self.nonce,
            body: &self.body,
            wraps: &self.wraps,
            signature: &self.signature,
        };
        postcard::to_extend(&stored, vec![STORED_FORMAT]).map_err(|_| StoredEnvelopeError)
    }

    /// Reads [`Envelope::to_stored`]'s output; anything else (another
    /// format byte, trailing bytes, a truncated field) is an error.
    pub fn from_stored(bytes: &[u8]) -> Result<Envelope, StoredEnvelopeError> {
        match bytes.split_first() {
            Some((&STORED_FORMAT, rest)) => match postcard::take_from_bytes::<StoredOwned>(rest) {
                Ok((stored, [])) => Ok(stored.into()),
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
    pub sent_at: Timestamp,
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
