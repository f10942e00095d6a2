//! `chat.list`: my chats, the most recently active first, each with its
//! newest message, my unread count and my read position, one page at a time
//! (at most `limit` chats and `limits.max_reply_bytes`; `next_cursor` leads
//! to the next page).

use crate::error::Fail;
use crate::paging::page_bytes;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::ids::{ChatId, Timestamp};
use ferrogram_core::proto::{ChatList, ChatListRequest, DEFAULT_CHAT_PAGE, MAX_CHAT_PAGE};
use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_storage::chats::{self, ListCursor};

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::ListChats {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: ChatListRequest,
    ) -> Result<ChatList, ApiError> {
        let me = caller.require_session()?.user_id;
        let limit = req.limit.unwrap_or(DEFAULT_CHAT_PAGE);
        if !(1..=MAX_CHAT_PAGE).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit must be 1 to {MAX_CHAT_PAGE}"
            )));
        }
        let cursor = req.cursor.as_deref().map(parse_cursor).transpose()?;
        let max_bytes = page_bytes(ctx);
        let page = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> {
                Ok(chats::list_page(
                    conn,
                    me,
                    cursor,
                    Timestamp::now(),
                    limit,
                    max_bytes,
                )?)
            })
            .await?;
        Ok(ChatList {
            chats: page.chats,
            next_cursor: page.next.map(|c| format_cursor(&c)),
        })
    }
}

/// `as_of.active.chat_id`, in decimal. Opaque to clients.
fn format_cursor(cursor: &ListCursor) -> String {
    format!("{}.{}.{}", cursor.as_of, cursor.active, cursor.chat_id.0)
}

fn parse_cursor(text: &str) -> Result<ListCursor, ApiError> {
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidCursor,
            "cursor must be a next_cursor from chat.list",
        )
    };
    let mut parts = text.split('.');
    let mut number = || -> Result<i64, ApiError> {
        parts
            .next()
            .filter(|p| !p.is_empty() && p.len() <= 20)
            .and_then(|p| p.parse().ok())
            .ok_or_else(invalid)
    };
    let cursor = ListCursor {
        as_of: Timestamp::from_millis(number()?),
        active: Timestamp::from_millis(number()?),
        chat_id: ChatId(number()?),
    };
    if parts.next().is_some() {
        return Err(invalid());
    }
    Ok(cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_anything_else_is_refused() {
        let cursor = ListCursor {
            as_of: Timestamp::from_millis(1_795_967_096_123),
            active: Timestamp::from_millis(1_795_967_000_000),
            chat_id: ChatId(42),
        };
        assert_eq!(parse_cursor(&format_cursor(&cursor)).ok(), Some(cursor));
        for bad in [
            "",
            "1.2",
            "1.2.3.4",
            "a.b.c",
            "1..3",
            "1.2.99999999999999999999999",
        ] {
            let err = parse_cursor(bad).err().map(|e| e.code);
            assert_eq!(err, Some(ErrorCode::InvalidCursor), "{bad:?}");
        }
    }
}
