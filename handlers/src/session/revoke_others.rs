//! `session.revoke_others`: log out everywhere except here. The other
//! sessions' open sockets are closed at once.

use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::ids::{SessionId, UserId};
use ferrogram_core::proto::{Empty, RevokedSessions};
use ferrogram_core::ApiError;
use ferrogram_storage::rusqlite::{Connection, TransactionBehavior};
use ferrogram_storage::{sessions, StorageError};

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::RevokeOtherSessions {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        _: Empty,
    ) -> Result<RevokedSessions, ApiError> {
        let me = caller.require_session()?.clone();
        let revoked = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> {
                Ok(delete_others(conn, me.user_id, &me.session_id)?)
            })
            .await?;
        for session in &revoked {
            ctx.notifier.session_closed(session);
        }
        Ok(RevokedSessions {
            revoked: u32::try_from(revoked.len()).unwrap_or(u32::MAX),
        })
    }
}

/// Deletes every session of `user` but `keep` and returns their ids, so
/// their sockets can be closed. One transaction: a session created
/// meanwhile is either listed and deleted, or kept.
pub(crate) fn delete_others(
    conn: &mut Connection,
    user: UserId,
    keep: &SessionId,
) -> Result<Vec<SessionId>, StorageError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let others = others_of(&tx, user, keep)?;
    sessions::delete_others(&tx, user, keep)?;
    tx.commit()?;
    Ok(others)
}

/// The ids of `user`'s sessions other than `keep`.
pub(crate) fn others_of(
    conn: &Connection,
    user: UserId,
    keep: &SessionId,
) -> Result<Vec<SessionId>, StorageError> {
    Ok(sessions::list_for_user(conn, user)?
        .into_iter()
        .map(|session| session.id)
        .filter(|id| id != keep)
        .collect())
}
