//! `me.get`: the caller's own account, with the fingerprint of its keys.

use crate::{views, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{Empty, Me};
use ferrogram_core::ApiError;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::GetMe {
    async fn handle(&self, ctx: &HandlerCtx, caller: &Caller, _: Empty) -> Result<Me, ApiError> {
        let user = super::load(ctx, caller.require_session()?.user_id).await?;
        Ok(views::me(&user))
    }
}
