//! `chat.invitations`: my pending invitations to groups, newest first.

use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::ids::Timestamp;
use ferrogram_core::proto::{Empty, InvitationList};
use ferrogram_core::ApiError;
use ferrogram_storage::invitations;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::ListInvitations {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        _req: Empty,
    ) -> Result<InvitationList, ApiError> {
        let me = caller.require_session()?.user_id;
        let now = Timestamp::now();
        // At most `limits.max_pending_invitations` rows: the list is bounded.
        let invitations = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> { Ok(invitations::list(conn, me, now)?) })
            .await?;
        Ok(InvitationList { invitations })
    }
}
