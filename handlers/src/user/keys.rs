//! `user.keys`: an account's public keys and their fingerprint, for
//! encrypting to it and for comparing safety numbers.

use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::crypto::fingerprint::fingerprint;
use ferrogram_core::proto::{GetUserKeysRequest, UserKeys};
use ferrogram_core::ApiError;
use ferrogram_storage::users;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::GetUserKeys {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        _: &Caller,
        req: GetUserKeysRequest,
    ) -> Result<UserKeys, ApiError> {
        let user = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> { Ok(users::by_id(conn, req.id)?) })
            .await?
            .ok_or_else(super::not_found)?;
        Ok(UserKeys {
            user_id: user.id,
            fingerprint: fingerprint(&user.public_keys),
            public_keys: user.public_keys,
        })
    }
}
