//! `message.*`: sending, editing and deleting end-to-end encrypted
//! messages, reading history, marking messages read.
//!
//! The server never decrypts. Before storing an envelope it checks, with
//! public information only, that it came from the caller for this chat
//! (`verify_origin`), that its client id is the request's, and that it is
//! well formed, small enough and sealed for exactly the chat's current
//! members (`verify_structure`). The writer re-checks the member list inside
//! its transaction, so a membership change racing the send is caught too.

pub mod delete;
pub mod delivered;
pub mod edit;
pub mod history;
pub mod read;
pub mod send;

use crate::{HandlerCtx, Settings};
use ferrogram_core::crypto::envelope::{
    verify_origin, verify_structure, EnvelopeError, MAX_CLIENT_MSG_ID_LEN,
};
use ferrogram_core::ids::{ChatId, UserId};
use ferrogram_core::proto::{ChatEvent, Envelope, MessageAck};
use ferrogram_core::{ApiError, ErrorCode};

/// JSON bytes one key wrap may take in a request: a user id, a 32-byte key id
/// and an RSA-OAEP block of up to 4096 bits, base64, with their field names.
const WRAP_JSON_BYTES: usize = 800;
/// Everything else: header, key id, nonce, signature, field names.
const ENVELOPE_OVERHEAD_BYTES: usize = 4096;

/// The largest `message.send` or `message.edit` request the configured
/// limits allow: a wrap for each of `max_group_members` and a body of
/// `max_envelope_body_bytes`. The server's request-body and WebSocket-frame
/// limits must be at least this, or the biggest groups cannot send.
pub fn max_send_request_bytes(settings: &Settings) -> usize {
    settings.max_group_members * WRAP_JSON_BYTES
        + settings.max_envelope_body_bytes.div_ceil(3) * 4
        + ENVELOPE_OVERHEAD_BYTES
}

pub(crate) fn ack(event: &ChatEvent, duplicate: bool) -> MessageAck {
    MessageAck {
        chat_id: event.chat_id,
        seq: event.seq,
        at: event.at,
        duplicate,
    }
}

/// 1 to 64 bytes, no control characters (the envelope header's own rule).
pub(crate) fn client_msg_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_CLIENT_MSG_ID_LEN || id.chars().any(char::is_control) {
        return Err(ApiError::new(
            ErrorCode::InvalidClientMsgId,
            "client_msg_id must be 1 to 64 bytes without control characters",
        ));
    }
    Ok(())
}

/// Why an envelope was refused. The messages name rules and user ids, never
/// content; a body over the limit is `payload_too_large`.
pub(crate) fn envelope_error(e: &EnvelopeError) -> ApiError {
    let code = match e {
        EnvelopeError::BodyTooLarge { .. } => ErrorCode::PayloadTooLarge,
        _ => ErrorCode::InvalidEnvelope,
    };
    ApiError::new(code, e.to_string())
}

/// The stateless checks: the envelope names this chat and the caller.
pub(crate) fn check_origin(
    envelope: &Envelope,
    chat_id: ChatId,
    sender: UserId,
) -> Result<(), ApiError> {
    verify_origin(envelope, chat_id, sender).map_err(|e| envelope_error(&e))
}

/// Structure, size, and wraps for exactly `members`.
pub(crate) fn check_structure(
    ctx: &HandlerCtx,
    envelope: &Envelope,
    members: &[UserId],
) -> Result<(), ApiError> {
    verify_structure(envelope, members, ctx.settings.max_envelope_body_bytes)
        .map_err(|e| envelope_error(&e))
}
