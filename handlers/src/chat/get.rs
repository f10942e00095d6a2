//! `chat.get`: a chat with its members (members only).

use super::{load_chat, member_access};
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{Chat, ChatRef};
use ferrogram_core::ApiError;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::GetChat {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: ChatRef,
    ) -> Result<Chat, ApiError> {
        let me = caller.require_session()?.user_id;
        member_access(ctx, req.chat_id, me).await?;
        load_chat(ctx, req.chat_id).await
    }
}
