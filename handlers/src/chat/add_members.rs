//! `chat.add_members` (admins and the owner): the new members see the chat
//! from now on; older messages were not encrypted for them. Users whose
//! privacy setting does not let the caller add them are invited instead;
//! the answer's `invited` lists them together with ids that have no account.

use super::{change, load_chat, not_added};
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{AddMembersRequest, Chat};
use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_storage::writer::Change;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::AddMembers {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: AddMembersRequest,
    ) -> Result<Chat, ApiError> {
        let me = caller.require_session()?.user_id;
        let mut user_ids = req.user_ids;
        user_ids.sort_unstable();
        user_ids.dedup();
        if user_ids.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidMembers,
                "name at least one user to add",
            ));
        }
        let max = ctx.settings.max_group_members;
        // Cheap early answer; the writer checks the real total.
        if user_ids.len() >= max {
            return Err(ApiError::new(
                ErrorCode::TooManyMembers,
                format!("a group has at most {max} members"),
            ));
        }
        let added = Change::AddMembers {
            user_ids: user_ids.clone(),
            invitations: ctx.settings.invitations,
        };
        let done = change(ctx, req.chat_id, me, added).await?;
        let mut chat = load_chat(ctx, req.chat_id).await?;
        chat.invited = not_added(&user_ids, &done.added);
        Ok(chat)
    }
}
