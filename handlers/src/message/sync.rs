//! Catching up after a reconnect, for the WebSocket gateway's `resume`
//! frame: the events of a chat after a seq the client already has, as the
//! member is allowed to see them. Not a command of its own: `message.history`
//! with `after_seq` pages through the same events.

use crate::chat::member_access;
use crate::error::Fail;
use crate::HandlerCtx;
use ferrogram_core::crypto::envelope::event_for_reader;
use ferrogram_core::ids::{ChatId, Seq, UserId};
use ferrogram_core::proto::ChatEvent;
use ferrogram_core::ApiError;
use ferrogram_storage::{chats, events};

/// Events with `seq > after_seq` (never older than the user's membership),
/// oldest first, at most `limit`. Call again from the last seq returned
/// until fewer than `limit` come back. `chat_not_found` / `not_a_member`
/// otherwise.
pub async fn missed_events(
    ctx: &HandlerCtx,
    user: UserId,
    chat_id: ChatId,
    after_seq: Seq,
    limit: u32,
) -> Result<Vec<ChatEvent>, ApiError> {
    let (_, membership) = member_access(ctx, chat_id, user).await?;
    let from = after_seq.max(membership.joined_seq - 1);
    let events = ctx
        .storage
        .run(move |conn| -> Result<_, Fail> {
            Ok(events::events_after(conn, chat_id, from, limit)?)
        })
        .await?;
    // Each message with only the reader's own key wrap (envelope version 2).
    Ok(events
        .into_iter()
        .map(|event| event_for_reader(event, user))
        .collect())
}

/// The chats `user` is a member of, with their last seq: what a gateway
/// subscribes a new connection to.
pub async fn my_chats(ctx: &HandlerCtx, user: UserId) -> Result<Vec<(ChatId, Seq)>, ApiError> {
    Ok(ctx
        .storage
        .run(move |conn| -> Result<_, Fail> {
            let mut found = Vec::new();
            for chat_id in chats::chat_ids_for_user(conn, user)? {
                if let Some(chat) = chats::by_id(conn, chat_id)? {
                    found.push((chat_id, chat.last_seq));
                }
            }
            Ok(found)
        })
        .await?)
}
