//! `presence.get`: online / last seen of users I share a chat with (and of
//! myself). Users I share no chat with are left out of the answer: presence
//! is not for strangers.

use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{PresenceList, PresenceRequest};
use ferrogram_core::ApiError;
use ferrogram_storage::{chats, presence};

/// Most users asked about in one request.
pub const MAX_USERS: usize = 200;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::GetPresence {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: PresenceRequest,
    ) -> Result<PresenceList, ApiError> {
        let me = caller.require_session()?.user_id;
        let mut wanted = req.user_ids;
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.len() > MAX_USERS {
            return Err(ApiError::bad_request(format!(
                "ask for at most {MAX_USERS} users at a time"
            )));
        }
        // Who may be seen, and when they were last active in a request.
        let visible = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> {
                let mut visible = Vec::new();
                for user in wanted {
                    if user == me || chats::share_a_chat(conn, me, user)? {
                        visible.push((user, presence::last_active(conn, user)?));
                    }
                }
                Ok(visible)
            })
            .await?;
        let users = visible
            .into_iter()
            .map(|(user, last_active)| {
                let mut info = ctx.notifier.presence(user);
                // The gateway knows live state; the database remembers
                // activity from before the last restart.
                if !info.online {
                    info.last_seen_at = info.last_seen_at.max(last_active);
                }
                info
            })
            .collect();
        Ok(PresenceList { users })
    }
}
