//! `chat.leave`: leave a group. The owner leaves only after transferring
//! ownership, or when alone. Direct chats cannot be left.

use super::change;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{ChatRef, Empty};
use ferrogram_core::ApiError;
use ferrogram_storage::writer::Change;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::LeaveChat {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: ChatRef,
    ) -> Result<Empty, ApiError> {
        let me = caller.require_session()?.user_id;
        change(ctx, req.chat_id, me, Change::Leave).await?;
        Ok(Empty {})
    }
}
