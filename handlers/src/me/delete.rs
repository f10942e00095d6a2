//! `me.delete`: remove the account, confirmed with the current auth_key. Its
//! sessions and pending verification go with it (foreign-key cascade), and
//! its open sockets are closed at once.
//!
//! In the same writer transaction, each of its chats records that it left
//! (a `member_left` event, so the other members stop sealing messages for
//! it) and a group it owned passes to its longest-standing admin, else
//! member; its pending invitations go too. Its messages stay in
//! the chats' logs; their sender id no longer resolves to a profile.

use crate::session::create::invalid_credentials;
use crate::{checks, password, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{DeleteAccountRequest, Empty};
use ferrogram_core::ApiError;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::DeleteAccount {
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
        if !password::verify(
            password::Priority::Other,
            ctx.settings.auth_hash,
            req.auth_key.0,
            Some(user.auth_hash),
        )
        .await?
        {
            return Err(invalid_credentials());
        }
        // One writer request: the departures from every chat and the
        // account row go together, serialized with every membership change
        // (an add racing the deletion cannot slip in between).
        ctx.writer
            .delete_account(user_id)
            .await
            .map_err(|e| crate::chat::write_error(&e))?;
        ctx.notifier.user_closed(user_id);
        tracing::info!(user_id = %user_id, "account deleted");
        Ok(Empty {})
    }
}
