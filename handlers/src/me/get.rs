//! `me.get`: the caller's own account, with the fingerprint of its keys.

use crate::{views, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Access, Caller, CommandHandler};
use ferrogram_core::proto::{Empty, Me};
use ferrogram_core::ApiError;

pub struct GetMe;

#[async_trait]
impl CommandHandler<HandlerCtx> for GetMe {
    const NAME: &'static str = "me.get";
    const ACCESS: Access = Access::Session;
    const RATE_CLASS: Option<&'static str> = Some("session");
    type Req = Empty;
    type Resp = Me;

    async fn handle(&self, ctx: &HandlerCtx, caller: &Caller, _: Empty) -> Result<Me, ApiError> {
        let user = super::load(ctx, caller.require_session()?.user_id).await?;
        Ok(views::me(&user))
    }
}
