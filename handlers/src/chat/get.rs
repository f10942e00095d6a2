//! `chat.get`: a chat with its members (members only).

use super::{load_chat, member_access};
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Access, Caller, CommandHandler};
use ferrogram_core::proto::{Chat, ChatRef};
use ferrogram_core::ApiError;

pub struct GetChat;

#[async_trait]
impl CommandHandler<HandlerCtx> for GetChat {
    const NAME: &'static str = "chat.get";
    const ACCESS: Access = Access::Verified;
    const RATE_CLASS: Option<&'static str> = Some("read");
    type Req = ChatRef;
    type Resp = Chat;

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
