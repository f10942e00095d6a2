//! `user.get`: a profile by handle.

use crate::error::Fail;
use crate::{views, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{GetUserRequest, UserProfile};
use ferrogram_core::{validate, ApiError};
use ferrogram_storage::users;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::GetUser {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        _: &Caller,
        req: GetUserRequest,
    ) -> Result<UserProfile, ApiError> {
        let handle = validate::handle(&req.handle)?;
        let user = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> { Ok(users::by_handle(conn, &handle)?) })
            .await?
            .ok_or_else(super::not_found)?;
        Ok(views::user_profile(&user))
    }
}
