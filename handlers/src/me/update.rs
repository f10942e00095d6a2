//! `me.update`: change display name, bio or handle; fields left out stay.

use crate::error::Fail;
use crate::{views, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Access, Caller, CommandHandler};
use ferrogram_core::ids::now_millis;
use ferrogram_core::proto::{Me, UpdateProfileRequest};
use ferrogram_core::{validate, ApiError};
use ferrogram_storage::users::{self, ProfileUpdate};

pub struct UpdateMe;

#[async_trait]
impl CommandHandler<HandlerCtx> for UpdateMe {
    const NAME: &'static str = "me.update";
    const ACCESS: Access = Access::Session;
    type Req = UpdateProfileRequest;
    type Resp = Me;

    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: UpdateProfileRequest,
    ) -> Result<Me, ApiError> {
        let user_id = caller.require_session()?.user_id;
        let update = ProfileUpdate {
            display_name: req
                .display_name
                .as_deref()
                .map(validate::display_name)
                .transpose()?,
            bio: req.bio.as_deref().map(validate::bio).transpose()?,
            handle: req.handle.as_deref().map(validate::handle).transpose()?,
        };
        let now = now_millis();
        let user = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> {
                // Keeping one's own handle is not a conflict: UNIQUE only
                // compares against other rows.
                users::update_profile(conn, user_id, &update, now)?;
                Ok(users::by_id(conn, user_id)?)
            })
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    ferrogram_core::ErrorCode::UserNotFound,
                    "this account no longer exists",
                )
            })?;
        Ok(views::me(&user))
    }
}
