//! `message.history`: a page of a chat's log (members only). A member sees
//! the log from the event that added them on: older messages were not
//! encrypted for them.

use crate::chat::member_access;
use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Access, Caller, CommandHandler};
use ferrogram_core::crypto::envelope::event_for_reader;
use ferrogram_core::proto::{HistoryPage, HistoryRequest};
use ferrogram_core::ApiError;
use ferrogram_storage::events::{self, HistoryQuery};

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

pub struct History;

#[async_trait]
impl CommandHandler<HandlerCtx> for History {
    const NAME: &'static str = "message.history";
    const ACCESS: Access = Access::Verified;
    const RATE_CLASS: Option<&'static str> = Some("read");
    type Req = HistoryRequest;
    type Resp = HistoryPage;

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
        let (_, membership) = member_access(ctx, req.chat_id, me).await?;
        let query = HistoryQuery {
            first_visible: membership.joined_seq,
            before_seq: req.before_seq,
            after_seq: req.after_seq,
            limit,
        };
        let chat_id = req.chat_id;
        let (events, more) = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> { Ok(events::history(conn, chat_id, &query)?) })
            .await?;
        // Each message with only the reader's own key wrap (envelope version 2).
        let events = events
            .into_iter()
            .map(|event| event_for_reader(event, me))
            .collect();
        Ok(HistoryPage { events, more })
    }
}
