//! `chat.remove_member`: admins remove members, the owner also removes
//! admins. The removed member's sessions are told at once and the member
//! reads nothing of the chat any more.

use super::{change, load_chat};
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{Chat, ChatMemberRequest};
use ferrogram_core::ApiError;
use ferrogram_storage::writer::Change;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::RemoveMember {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: ChatMemberRequest,
    ) -> Result<Chat, ApiError> {
        let me = caller.require_session()?.user_id;
        let removal = Change::RemoveMember {
            user_id: req.user_id,
        };
        change(ctx, req.chat_id, me, removal).await?;
        load_chat(ctx, req.chat_id).await
    }
}
