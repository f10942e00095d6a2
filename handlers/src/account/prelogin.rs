//! `account.prelogin`: the salt and KDF parameters a client needs to derive
//! its keys from the password. Unknown emails get a stable fake salt, so the
//! answer does not reveal who has an account.

use crate::account::email_rate_key;
use crate::error::Fail;
use crate::{secrets, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::b64::B64;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{PreloginRequest, PreloginResponse};
use ferrogram_core::{validate, ApiError};
use ferrogram_storage::users;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::Prelogin {
    fn rate_key(req: &PreloginRequest) -> Option<String> {
        email_rate_key(&req.email)
    }

    async fn handle(
        &self,
        ctx: &HandlerCtx,
        _: &Caller,
        req: PreloginRequest,
    ) -> Result<PreloginResponse, ApiError> {
        let email = validate::email(&req.email)?;
        let lookup_email = email.clone();
        let user = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> { Ok(users::by_email(conn, &lookup_email)?) })
            .await?;
        Ok(match user {
            Some(user) => PreloginResponse {
                salt: B64(user.kdf_salt),
                kdf: user.kdf,
            },
            // Unknown emails answer like a fresh account with default-strength
            // parameters; the salt is stable so repeated asks match.
            None => PreloginResponse {
                salt: B64(secrets::fake_salt(&ctx.settings.server_secret, &email).to_vec()),
                kdf: ctx.settings.min_kdf,
            },
        })
    }
}
