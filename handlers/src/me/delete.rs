//! `me.delete`: remove the account, confirmed with the current auth_key. Its
//! sessions and pending verification go with it (foreign-key cascade).

use crate::error::Fail;
use crate::session::create::invalid_credentials;
use crate::{checks, password, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Access, Caller, CommandHandler};
use ferrogram_core::proto::{DeleteAccountRequest, Empty};
use ferrogram_core::ApiError;
use ferrogram_storage::users;

pub struct DeleteAccount;

#[async_trait]
impl CommandHandler<HandlerCtx> for DeleteAccount {
    const NAME: &'static str = "me.delete";
    const ACCESS: Access = Access::Session;
    type Req = DeleteAccountRequest;
    type Resp = Empty;

    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: DeleteAccountRequest,
    ) -> Result<Empty, ApiError> {
        let user_id = caller.require_session()?.user_id;
        if checks::auth_key(&req.auth_key).is_err() {
            return Err(invalid_credentials());
        }
        let user = super::load(ctx, user_id).await?;
        if !password::verify(ctx.settings.auth_hash, req.auth_key.0, Some(user.auth_hash)).await? {
            return Err(invalid_credentials());
        }
        ctx.storage
            .run(move |conn| -> Result<_, Fail> { Ok(users::delete(conn, user_id)?) })
            .await?;
        tracing::info!(user_id = %user_id, "account deleted");
        Ok(Empty {})
    }
}
