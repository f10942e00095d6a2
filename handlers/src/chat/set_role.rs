//! `chat.set_role` (the owner): make a member admin, or an admin member.

use super::{change, load_chat};
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{Chat, Role, SetRoleRequest};
use ferrogram_core::ApiError;
use ferrogram_storage::writer::Change;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::SetRole {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: SetRoleRequest,
    ) -> Result<Chat, ApiError> {
        let me = caller.require_session()?.user_id;
        if req.role == Role::Owner {
            return Err(ApiError::bad_request(
                "ownership moves with chat.transfer_ownership",
            ));
        }
        let role = Change::SetRole {
            user_id: req.user_id,
            role: req.role,
        };
        change(ctx, req.chat_id, me, role).await?;
        load_chat(ctx, req.chat_id).await
    }
}
