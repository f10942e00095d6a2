//! `chat.create_group`: a new group; the caller becomes its owner.

use super::{announce_joined, load_chat, title, write_error};
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Access, Caller, CommandHandler};
use ferrogram_core::proto::{Chat, CreateGroupRequest};
use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_storage::writer::NewChat;

pub struct CreateGroup;

#[async_trait]
impl CommandHandler<HandlerCtx> for CreateGroup {
    const NAME: &'static str = "chat.create_group";
    const ACCESS: Access = Access::Verified;
    const RATE_CLASS: Option<&'static str> = Some("group_create");
    type Req = CreateGroupRequest;
    type Resp = Chat;

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
                members,
                max_members: max,
            })
            .await
            .map_err(|e| write_error(&e))?;
        announce_joined(ctx, created.chat_id, created.members).await;
        load_chat(ctx, created.chat_id).await
    }
}
