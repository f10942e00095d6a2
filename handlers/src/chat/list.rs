//! `chat.list`: my chats, the most recently active first, each with its
//! newest message, my unread count and my read position.

use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Access, Caller, CommandHandler};
use ferrogram_core::proto::{ChatList, Empty};
use ferrogram_core::ApiError;
use ferrogram_storage::chats;

pub struct ListChats;

#[async_trait]
impl CommandHandler<HandlerCtx> for ListChats {
    const NAME: &'static str = "chat.list";
    const ACCESS: Access = Access::Verified;
    const RATE_CLASS: Option<&'static str> = Some("read");
    type Req = Empty;
    type Resp = ChatList;

    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        _: Empty,
    ) -> Result<ChatList, ApiError> {
        let me = caller.require_session()?.user_id;
        let chats = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> { Ok(chats::list_for_user(conn, me)?) })
            .await?;
        Ok(ChatList { chats })
    }
}
