//! `chat.rename`: a new group title (admins and the owner).

use super::{change, load_chat, title};
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Access, Caller, CommandHandler};
use ferrogram_core::proto::{Chat, RenameChatRequest};
use ferrogram_core::ApiError;
use ferrogram_storage::writer::Change;

pub struct RenameChat;

#[async_trait]
impl CommandHandler<HandlerCtx> for RenameChat {
    const NAME: &'static str = "chat.rename";
    const ACCESS: Access = Access::Verified;
    const RATE_CLASS: Option<&'static str> = Some("chat_admin");
    type Req = RenameChatRequest;
    type Resp = Chat;

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
