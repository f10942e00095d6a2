//! `session.revoke_others`: log out everywhere except here.

use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Access, Caller, CommandHandler};
use ferrogram_core::proto::{Empty, RevokedSessions};
use ferrogram_core::ApiError;
use ferrogram_storage::sessions;

pub struct RevokeOtherSessions;

#[async_trait]
impl CommandHandler<HandlerCtx> for RevokeOtherSessions {
    const NAME: &'static str = "session.revoke_others";
    const ACCESS: Access = Access::Session;
    type Req = Empty;
    type Resp = RevokedSessions;

    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        _: Empty,
    ) -> Result<RevokedSessions, ApiError> {
        let me = caller.require_session()?.clone();
        let revoked = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> {
                Ok(sessions::delete_others(conn, me.user_id, &me.session_id)?)
            })
            .await?;
        Ok(RevokedSessions {
            revoked: u32::try_from(revoked).unwrap_or(u32::MAX),
        })
    }
}
