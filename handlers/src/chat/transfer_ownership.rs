//! `chat.transfer_ownership` (the owner): another member becomes owner and
//! the old owner an admin. Stored as two `role_changed` events.

use super::{change, load_chat};
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{Chat, ChatMemberRequest};
use ferrogram_core::ApiError;
use ferrogram_storage::writer::Change;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::TransferOwnership {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: ChatMemberRequest,
    ) -> Result<Chat, ApiError> {
        let me = caller.require_session()?.user_id;
        let transfer = Change::TransferOwnership {
            user_id: req.user_id,
        };
        change(ctx, req.chat_id, me, transfer).await?;
        load_chat(ctx, req.chat_id).await
    }
}
