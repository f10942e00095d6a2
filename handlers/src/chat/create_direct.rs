//! `chat.create_direct`: the one direct chat with another user, created on
//! first use and returned as it is afterwards.

use super::{announce_joined, load_chat, write_error};
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{Chat, CreateDirectRequest};
use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_storage::writer::NewChat;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::CreateDirectChat {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: CreateDirectRequest,
    ) -> Result<Chat, ApiError> {
        let me = caller.require_session()?.user_id;
        if req.user_id == me {
            return Err(ApiError::new(
                ErrorCode::InvalidMembers,
                "a direct chat needs another user",
            ));
        }
        let created = ctx
            .writer
            .create_chat(NewChat::Direct {
                creator: me,
                peer: req.user_id,
            })
            .await
            .map_err(|e| write_error(&e))?;
        if created.event.is_some() {
            announce_joined(ctx, created.chat_id, created.members).await;
        }
        load_chat(ctx, created.chat_id).await
    }
}
