//! `me.update`: change display name, bio, handle or the privacy setting
//! "who can add me to groups"; fields left out stay.
//! Everyone who shares a chat with me, and my other sessions, get a
//! `profile_changed` live event with the new profile when something changed.

use crate::error::Fail;
use crate::{views, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::ids::Timestamp;
use ferrogram_core::proto::{LiveEvent, Me, UpdateProfileRequest};
use ferrogram_core::{validate, ApiError};
use ferrogram_storage::chats;
use ferrogram_storage::users::{self, ProfileUpdate};

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::UpdateMe {
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
            who_can_add_me: req.who_can_add_me,
        };
        let now = Timestamp::now();
        let (before, user, audience) = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> {
                let before = users::by_id(conn, user_id)?;
                // Keeping one's own handle is not a conflict: UNIQUE only
                // compares against other rows.
                users::update_profile(conn, user_id, &update, now)?;
                let user = users::by_id(conn, user_id)?;
                let mut audience = chats::co_members(conn, user_id)?;
                audience.push(user_id);
                audience.sort_unstable();
                Ok((before, user, audience))
            })
            .await?;
        let (Some(before), Some(user)) = (before, user) else {
            return Err(ApiError::new(
                ferrogram_core::ErrorCode::UserNotFound,
                "this account no longer exists",
            ));
        };
        let now = views::user_profile(&user);
        if now != views::user_profile(&before) {
            ctx.notifier
                .live_event(&audience, &LiveEvent::ProfileChanged { user: now });
        }
        Ok(views::me(&user))
    }
}
