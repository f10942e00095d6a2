//! `message.read`: move my read position forwards (never back, never past
//! the last event). When it moves, every member's online sessions get a
//! read receipt: the others see how far I read, my other devices update
//! their unread counts. `message.delivered` moves the delivery position the
//! same way ([`advance`] serves both).

use crate::chat::write_error;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::ids::Seq;
use ferrogram_core::proto::{Empty, LiveEvent, MarkReadRequest};
use ferrogram_core::ApiError;
use ferrogram_storage::chats::Receipt;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::MarkRead {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: MarkReadRequest,
    ) -> Result<Empty, ApiError> {
        advance(ctx, caller, &req, Receipt::Read).await
    }
}

/// Moves the caller's read or delivery position in a chat and, when it
/// moved, sends the receipt to whom the writer names.
pub(crate) async fn advance(
    ctx: &HandlerCtx,
    caller: &Caller,
    req: &MarkReadRequest,
    receipt: Receipt,
) -> Result<Empty, ApiError> {
    let me = caller.require_session()?.user_id;
    if req.seq < Seq::ZERO {
        return Err(ApiError::bad_request("seq must not be negative"));
    }
    let mark = ctx
        .writer
        .mark(receipt, req.chat_id, me, req.seq)
        .await
        .map_err(|e| write_error(&e))?;
    if mark.moved {
        let (chat_id, user_id, seq) = (req.chat_id, me, mark.seq);
        let event = match receipt {
            Receipt::Read => LiveEvent::ReadReceipt {
                chat_id,
                user_id,
                seq,
            },
            Receipt::Delivered => LiveEvent::DeliveryReceipt {
                chat_id,
                user_id,
                seq,
            },
        };
        ctx.notifier.live_event(&mark.notify, &event);
    }
    Ok(Empty {})
}
