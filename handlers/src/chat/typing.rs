//! `chat.typing`: "is typing" for the other members' online sessions. Not
//! stored; clients send it every few seconds while typing. Over its rate
//! class a notice is dropped, never queued.

use super::{chat_not_found, not_a_member};
use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{ChatRef, Empty, LiveEvent};
use ferrogram_core::ApiError;
use ferrogram_storage::chats::{self, ChatAccess};

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::Typing {
    /// A notice over the rate is dropped: the next one says the same.
    fn over_rate(_retry_after: u64) -> Result<Empty, ApiError> {
        Ok(Empty {})
    }

    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: ChatRef,
    ) -> Result<Empty, ApiError> {
        let me = caller.require_session()?.user_id;
        let chat_id = req.chat_id;
        let others = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> {
                match chats::access(conn, chat_id, me)? {
                    ChatAccess::NoSuchChat => Err(chat_not_found().into()),
                    ChatAccess::NotAMember => Err(not_a_member().into()),
                    ChatAccess::Member(..) => {
                        let mut members = chats::member_ids(conn, chat_id)?;
                        members.retain(|user| *user != me);
                        Ok(members)
                    }
                }
            })
            .await?;
        if !others.is_empty() {
            let event = LiveEvent::Typing {
                chat_id,
                user_id: me,
            };
            ctx.notifier.live_event(&others, &event);
        }
        Ok(Empty {})
    }
}
