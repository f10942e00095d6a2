//! `message.read`: move my read position forwards (never back, never past
//! the last event). When it moves, every member's online sessions get a
//! read receipt: the others see how far I read, my other devices update
//! their unread counts.

use crate::chat::write_error;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Access, Caller, CommandHandler};
use ferrogram_core::proto::{Empty, LiveEvent, MarkReadRequest};
use ferrogram_core::ApiError;

pub struct MarkRead;

#[async_trait]
impl CommandHandler<HandlerCtx> for MarkRead {
    const NAME: &'static str = "message.read";
    const ACCESS: Access = Access::Verified;
    type Req = MarkReadRequest;
    type Resp = Empty;

    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: MarkReadRequest,
    ) -> Result<Empty, ApiError> {
        let me = caller.require_session()?.user_id;
        if req.seq < 0 {
            return Err(ApiError::bad_request("seq must not be negative"));
        }
        let mark = ctx
            .writer
            .mark_read(req.chat_id, me, req.seq)
            .await
            .map_err(|e| write_error(&e))?;
        if mark.moved {
            let receipt = LiveEvent::ReadReceipt {
                chat_id: req.chat_id,
                user_id: me,
                seq: mark.seq,
            };
            ctx.notifier.live_event(&mark.notify, &receipt);
        }
        Ok(Empty {})
    }
}
