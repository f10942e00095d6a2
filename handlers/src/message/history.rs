//! `message.history`: a page of a chat's log (members only). A member sees
//! the log from the event that added them on: older messages were not
//! encrypted for them. The read is [`chats::visible_events`], the same one
//! the WebSocket `resume` backlog uses.

use crate::chat::{chat_not_found, not_a_member};
use crate::error::Fail;
use crate::paging::page_bytes;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{HistoryPage, HistoryRequest};
use ferrogram_core::ApiError;
use ferrogram_storage::chats::{self, PageRange, Visible};

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::GetHistory {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: HistoryRequest,
    ) -> Result<HistoryPage, ApiError> {
        let me = caller.require_session()?.user_id;
        let limit = req.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit must be 1 to {MAX_PAGE}"
            )));
        }
        let range = PageRange {
            before_seq: req.before_seq,
            after_seq: req.after_seq,
            limit,
            max_bytes: page_bytes(ctx),
        };
        let chat_id = req.chat_id;
        let visible = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> {
                Ok(chats::visible_events(conn, chat_id, me, range)?)
            })
            .await?;
        match visible {
            Visible::NoSuchChat => Err(chat_not_found()),
            Visible::NotAMember => Err(not_a_member()),
            Visible::Page { events, more } => Ok(HistoryPage { events, more }),
        }
    }
}
