//! `session.revoke`: end one of the caller's sessions (for example a lost
//! laptop) by its public id. Its open sockets are closed at once.

use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{Empty, RevokeSessionRequest};
use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_storage::sessions;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::RevokeSession {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: RevokeSessionRequest,
    ) -> Result<Empty, ApiError> {
        let user_id = caller.require_session()?.user_id;
        let id = req.id.clone();
        let deleted = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> { Ok(sessions::delete_own(conn, user_id, &id)?) })
            .await?;
        // Someone else's session id answers exactly like a missing one.
        if deleted {
            ctx.notifier.session_closed(&req.id);
            Ok(Empty {})
        } else {
            Err(ApiError::new(ErrorCode::SessionNotFound, "no such session"))
        }
    }
}
