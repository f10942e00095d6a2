//! `session.delete_current`: log out (this session only). Its open sockets
//! are closed at once.

use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::Empty;
use ferrogram_core::ApiError;
use ferrogram_storage::sessions;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::DeleteCurrentSession {
    async fn handle(&self, ctx: &HandlerCtx, caller: &Caller, _: Empty) -> Result<Empty, ApiError> {
        let me = caller.require_session()?.clone();
        let session_id = me.session_id.clone();
        ctx.storage
            .run(move |conn| -> Result<_, Fail> {
                // Already gone (a concurrent revoke) is the outcome asked for.
                sessions::delete_own(conn, me.user_id, &me.session_id)?;
                Ok(())
            })
            .await?;
        ctx.notifier.session_closed(&session_id);
        Ok(Empty {})
    }
}
