//! `message.send`: store an encrypted message and acknowledge it after its
//! commit. A retry with the same `client_msg_id` gets the same answer with
//! `duplicate: true`; nothing is stored twice.

use super::{ack, check_origin, check_structure, client_msg_id};
use crate::chat::{chat_not_found, not_a_member, write_error};
use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{EventBody, MessageAck, SendMessageRequest};
use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_storage::chats::{self, ChatAccess};
use ferrogram_storage::events;
use ferrogram_storage::writer::{AppendRequest, Change, WriteContext};

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::SendMessage {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: SendMessageRequest,
    ) -> Result<MessageAck, ApiError> {
        let me = caller.require_session()?.user_id;
        let chat_id = req.chat_id;
        client_msg_id(&req.client_msg_id)?;
        if req.envelope.header.client_msg_id != req.client_msg_id {
            return Err(ApiError::new(
                ErrorCode::InvalidEnvelope,
                "the envelope's client_msg_id differs from the request's",
            ));
        }
        check_origin(&req.envelope, chat_id, me)?;

        // Fast path: the envelope is well formed for the members it names.
        // Whether those are exactly the chat's members, whether the caller is
        // one, and whether this is a retry, the writer decides inside its
        // transaction (it has to anyway, for changes racing the send), so a
        // valid send costs no read of its own before it is queued.
        let wrapped: Vec<_> = req.envelope.wraps.iter().map(|w| w.user_id).collect();
        if check_structure(ctx, &req.envelope, &wrapped).is_err() {
            // Slow path, for malformed envelopes and retries of stored ones:
            // answered exactly as before (access first, then a stored retry,
            // then what is wrong with the envelope).
            if let Some(ack) = precheck(ctx, me, &req).await? {
                return Ok(ack);
            }
        }

        let request = AppendRequest {
            chat_id,
            sender: me,
            change: Change::Message {
                client_msg_id: req.client_msg_id,
                envelope: req.envelope,
            },
        };
        // Sent over a WebSocket: the event is not pushed back to that socket,
        // whose reply (the ack) carries the seq; every other session gets it.
        let done = ctx
            .writer
            .append(request, WriteContext::from_origin(caller.origin))
            .await
            .map_err(|e| write_error(&e))?;
        // Fan-out already happened at commit (the writer's listener).
        Ok(ack(done.event(), done.duplicate))
    }
}

/// The checks before queueing a send whose envelope does not hold up on its
/// own: the caller's access, a stored retry (answered as a duplicate), then
/// the envelope against the chat's current members.
async fn precheck(
    ctx: &HandlerCtx,
    me: ferrogram_core::ids::UserId,
    req: &SendMessageRequest,
) -> Result<Option<MessageAck>, ApiError> {
    let chat_id = req.chat_id;
    let id = req.client_msg_id.clone();
    let (members, stored) = ctx
        .storage
        .run(move |conn| -> Result<_, Fail> {
            match chats::access(conn, chat_id, me)? {
                ChatAccess::NoSuchChat => Err(chat_not_found().into()),
                ChatAccess::NotAMember => Err(not_a_member().into()),
                ChatAccess::Member(..) => Ok((
                    chats::member_ids(conn, chat_id)?,
                    events::by_client_msg_id(conn, chat_id, me, &id)?,
                )),
            }
        })
        .await?;
    // A retry is answered before the envelope is checked again: the
    // members may have changed since the first attempt was stored.
    match stored {
        Some(
            event @ ferrogram_core::proto::ChatEvent {
                body: EventBody::Message { .. },
                ..
            },
        ) => return Ok(Some(ack(&event, true))),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidClientMsgId,
                "this client_msg_id was already used for an edit",
            ))
        }
        None => {}
    }
    check_structure(ctx, &req.envelope, &members)?;
    Ok(None)
}
