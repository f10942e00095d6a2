//! `chat.invitations`: my pending invitations to groups, newest first.

use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Access, Caller, CommandHandler};
use ferrogram_core::ids::now_millis;
use ferrogram_core::proto::{Empty, InvitationList};
use ferrogram_core::ApiError;
use ferrogram_storage::invitations;

pub struct ListInvitations;

#[async_trait]
impl CommandHandler<HandlerCtx> for ListInvitations {
    const NAME: &'static str = "chat.invitations";
    const ACCESS: Access = Access::Verified;
    const RATE_CLASS: Option<&'static str> = Some("read");
    type Req = Empty;
    type Resp = InvitationList;

    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        _req: Empty,
    ) -> Result<InvitationList, ApiError> {
        let me = caller.require_session()?.user_id;
        let now = now_millis();
        // At most `limits.max_pending_invitations` rows: the list is bounded.
        let invitations = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> { Ok(invitations::list(conn, me, now)?) })
            .await?;
        Ok(InvitationList { invitations })
    }
}
