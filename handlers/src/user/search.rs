//! `user.search`: accounts whose handle or display name starts with the query.

use crate::error::Fail;
use crate::{views, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{SearchUsersRequest, UserList};
use ferrogram_core::validate::DISPLAY_NAME_MAX;
use ferrogram_core::ApiError;
use ferrogram_storage::users;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 50;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::SearchUsers {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        _: &Caller,
        req: SearchUsersRequest,
    ) -> Result<UserList, ApiError> {
        let query = req.query.trim().to_owned();
        // Longer than any name can be matches nothing; refusing it keeps
        // pointless LIKE scans out.
        let chars = query.chars().count();
        if chars == 0 || chars > DISPLAY_NAME_MAX {
            return Err(ApiError::bad_request(format!(
                "query must be 1 to {DISPLAY_NAME_MAX} characters"
            )));
        }
        let limit = req.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let found = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> { Ok(users::search(conn, &query, limit)?) })
            .await?;
        Ok(UserList {
            users: found.into_iter().map(views::profile).collect(),
        })
    }
}
