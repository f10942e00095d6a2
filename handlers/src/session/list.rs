//! `session.list`: the caller's live sessions, most recently active first.

use crate::error::Fail;
use crate::{views, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::ids::Timestamp;
use ferrogram_core::proto::{Empty, SessionList};
use ferrogram_core::ApiError;
use ferrogram_storage::sessions;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::ListSessions {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        _: Empty,
    ) -> Result<SessionList, ApiError> {
        let me = caller.require_session()?.clone();
        let user_id = me.user_id;
        let all = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> { Ok(sessions::list_for_user(conn, user_id)?) })
            .await?;
        let now = Timestamp::now();
        Ok(SessionList {
            sessions: all
                .into_iter()
                .filter(|s| !s.is_expired(now))
                .map(|s| views::session(s, &me.session_id))
                .collect(),
        })
    }
}
