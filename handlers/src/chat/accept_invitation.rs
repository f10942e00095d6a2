//! `chat.accept_invitation`: I join the group I was invited to. The members
//! see a `members_added` event whose sender is me; from then on messages are
//! sealed for me. My sessions get `chat_joined` and `invitation_closed`.

use super::{change, load_chat};
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{Chat, ChatRef, LiveEvent};
use ferrogram_core::ApiError;
use ferrogram_storage::writer::Change;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::AcceptInvitation {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: ChatRef,
    ) -> Result<Chat, ApiError> {
        let me = caller.require_session()?.user_id;
        change(ctx, req.chat_id, me, Change::AcceptInvitation).await?;
        ctx.notifier.live_event(
            &[me],
            &LiveEvent::InvitationClosed {
                chat_id: req.chat_id,
            },
        );
        load_chat(ctx, req.chat_id).await
    }
}
