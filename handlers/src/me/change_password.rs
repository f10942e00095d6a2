//! `me.change_password`: the client derived new keys from the new password
//! and re-sealed its private keys; the server checks the old auth_key, stores
//! the new material and logs out every other session (whoever knew the old
//! password may hold one), closing their sockets at once.

use crate::error::Fail;
use crate::session::create::invalid_credentials;
use crate::session::revoke_others::others_of;
use crate::{checks, password, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::ids::{SessionId, Timestamp};
use ferrogram_core::proto::{ChangePasswordRequest, RevokedSessions};
use ferrogram_core::ApiError;
use ferrogram_storage::rusqlite::TransactionBehavior;
use ferrogram_storage::users::PasswordMaterial;
use ferrogram_storage::{sessions, users};

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::ChangePassword {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: ChangePasswordRequest,
    ) -> Result<RevokedSessions, ApiError> {
        let me = caller.require_session()?.clone();
        let settings = &ctx.settings;
        checks::auth_key(&req.new_auth_key)?;
        checks::kdf(&req.new_kdf_salt, &req.new_kdf, settings)?;
        checks::sealed_keys(&req.sealed_keys)?;
        if checks::auth_key(&req.old_auth_key).is_err() {
            return Err(invalid_credentials());
        }

        let user = super::load(ctx, me.user_id).await?;
        let old_hash = user.auth_hash.clone();
        if !password::verify(
            password::Priority::Other,
            settings.auth_hash,
            req.old_auth_key.0,
            Some(old_hash.clone()),
        )
        .await?
        {
            return Err(invalid_credentials());
        }
        let material = PasswordMaterial {
            auth_hash: password::hash(
                password::Priority::Other,
                settings.auth_hash,
                req.new_auth_key.0,
            )
            .await?,
            kdf_salt: req.new_kdf_salt.0,
            kdf: req.new_kdf,
            sealed_keys: req.sealed_keys.0,
        };
        let now = Timestamp::now();
        let revoked = ctx
            .storage
            .run(move |conn| -> Result<Option<Vec<SessionId>>, Fail> {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                // Two changes racing: only the one that verified against the
                // hash still stored may win, or a stale old password would
                // overwrite a newer one.
                let current = users::by_id(&tx, me.user_id)?;
                if current.map(|u| u.auth_hash) != Some(old_hash) {
                    return Ok(None);
                }
                users::update_password(&tx, me.user_id, &material, now)?;
                let revoked = others_of(&tx, me.user_id, &me.session_id)?;
                sessions::delete_others(&tx, me.user_id, &me.session_id)?;
                tx.commit()?;
                Ok(Some(revoked))
            })
            .await?
            .ok_or_else(invalid_credentials)?;
        for session in &revoked {
            ctx.notifier.session_closed(session);
        }
        tracing::info!(user_id = %me.user_id, revoked = revoked.len(), "password changed");
        Ok(RevokedSessions {
            revoked: u32::try_from(revoked.len()).unwrap_or(u32::MAX),
        })
    }
}
