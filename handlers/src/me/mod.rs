//! `me.*`: the caller's own account.

pub mod change_password;
pub mod delete;
pub mod get;
pub mod update;

use crate::error::Fail;
use crate::HandlerCtx;
use ferrogram_core::ids::UserId;
use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_storage::users::{self, User};

/// The caller's account. A session outliving its account cannot happen
/// (sessions cascade), but a delete racing this request can.
pub(crate) async fn load(ctx: &HandlerCtx, id: UserId) -> Result<User, ApiError> {
    ctx.storage
        .run(move |conn| -> Result<_, Fail> { Ok(users::by_id(conn, id)?) })
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UserNotFound, "this account no longer exists"))
}
