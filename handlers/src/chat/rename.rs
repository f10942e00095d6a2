//! `chat.rename`: a new group title (admins and the owner).

use super::{change, load_chat, title};
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{Chat, RenameChatRequest};
use ferrogram_core::ApiError;
use ferrogram_storage::writer::Change;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::RenameChat {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: RenameChatRequest,
    ) -> Result<Chat, ApiError> {
        let me = caller.require_session()?.user_id;
        let title = title(&req.title)?;
        change(ctx, req.chat_id, me, Change::Rename { title }).await?;
        load_chat(ctx, req.chat_id).await
    }
}
