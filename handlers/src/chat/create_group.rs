//! `chat.create_group`: a new group; the caller becomes its owner. Named
//! users whose privacy setting does not let the caller add them are invited
//! instead; the answer's `invited` lists them together with ids that have no
//! account, so it does not tell which ids exist.

use super::{announce_invited, announce_joined, load_chat, not_added, title, write_error};
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{Chat, CreateGroupRequest};
use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_storage::writer::NewChat;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::CreateGroup {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: CreateGroupRequest,
    ) -> Result<Chat, ApiError> {
        let me = caller.require_session()?.user_id;
        let title = title(&req.title)?;
        let max = ctx.settings.max_group_members;
        // The caller may list themselves; duplicates count once.
        let mut members = req.member_ids;
        members.push(me);
        members.sort_unstable();
        members.dedup();
        if members.len() > max {
            return Err(ApiError::new(
                ErrorCode::TooManyMembers,
                format!("a group has at most {max} members"),
            ));
        }
        let created = ctx
            .writer
            .create_chat(NewChat::Group {
                creator: me,
                title,
                members: members.clone(),
                invitations: ctx.settings.invitations,
            })
            .await
            .map_err(|e| write_error(&e))?;
        let invited = not_added(&members, &created.members);
        announce_joined(ctx, created.chat_id, created.members).await;
        announce_invited(ctx, created.chat_id, created.invited).await;
        let mut chat = load_chat(ctx, created.chat_id).await?;
        chat.invited = invited;
        Ok(chat)
    }
}
