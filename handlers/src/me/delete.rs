//! `me.delete`: remove the account, confirmed with the current auth_key. Its
//! sessions and pending verification go with it (foreign-key cascade), and
//! its open sockets are closed at once.
//!
//! First, each of its chats records that it left (a `member_left` event, so
//! the other members stop sealing messages for it) and a group it owned
//! passes to its longest-standing admin, else member. Its messages stay in
//! the chats' logs; their sender id no longer resolves to a profile.

use crate::error::{internal, Fail};
use crate::session::create::invalid_credentials;
use crate::{checks, password, HandlerCtx};
use async_trait::async_trait;
use ferrogram_core::command::{Access, Caller, CommandHandler};
use ferrogram_core::ids::UserId;
use ferrogram_core::proto::{DeleteAccountRequest, Empty};
use ferrogram_core::ApiError;
use ferrogram_storage::writer::{AppendRequest, Change, WriteError};
use ferrogram_storage::{chats, users};

pub struct DeleteAccount;

#[async_trait]
impl CommandHandler<HandlerCtx> for DeleteAccount {
    const NAME: &'static str = "me.delete";
    const ACCESS: Access = Access::Session;
    const RATE_CLASS: Option<&'static str> = Some("password");
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
        leave_every_chat(ctx, user_id).await?;
        ctx.storage
            .run(move |conn| -> Result<_, Fail> { Ok(users::delete(conn, user_id)?) })
            .await?;
        ctx.notifier.user_closed(user_id);
        tracing::info!(user_id = %user_id, "account deleted");
        Ok(Empty {})
    }
}

/// Records the departure in every chat of the account. The requests are
/// queued together, so the writer commits them in few batches. A failure
/// stops the deletion: the account stays, and a retry finishes the job.
async fn leave_every_chat(ctx: &HandlerCtx, user_id: UserId) -> Result<(), ApiError> {
    let chat_ids = ctx
        .storage
        .run(move |conn| -> Result<_, Fail> { Ok(chats::chat_ids_for_user(conn, user_id)?) })
        .await?;
    let mut departures = tokio::task::JoinSet::new();
    for chat_id in chat_ids {
        let writer = ctx.writer.clone();
        departures.spawn(async move {
            writer
                .append(AppendRequest {
                    chat_id,
                    sender: user_id,
                    change: Change::AccountDeleted,
                })
                .await
        });
    }
    while let Some(joined) = departures.join_next().await {
        match joined.map_err(|e| internal(&e))? {
            // Gone already (left, removed, or the chat vanished meanwhile).
            Ok(_) | Err(WriteError::NotAMember | WriteError::ChatNotFound) => {}
            Err(e) => return Err(crate::chat::write_error(&e)),
        }
    }
    Ok(())
}
