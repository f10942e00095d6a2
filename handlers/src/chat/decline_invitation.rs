//! `chat.decline_invitation`: the invitation is gone; the group's members
//! are not told (nor were they told of the invitation). My other sessions
//! get `invitation_closed`.

use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::ids::Timestamp;
use ferrogram_core::proto::{ChatRef, Empty, LiveEvent};
use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_storage::invitations;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::DeclineInvitation {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: ChatRef,
    ) -> Result<Empty, ApiError> {
        let me = caller.require_session()?.user_id;
        let chat_id = req.chat_id;
        let now = Timestamp::now();
        let removed = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> {
                Ok(invitations::remove(conn, chat_id, me, now)?)
            })
            .await?;
        if !removed {
            return Err(ApiError::new(
                ErrorCode::InvitationNotFound,
                "no pending invitation to this chat",
            ));
        }
        ctx.notifier
            .live_event(&[me], &LiveEvent::InvitationClosed { chat_id });
        Ok(Empty {})
    }
}
