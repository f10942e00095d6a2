//! `message.delivered`: a device of mine has received and stored a chat up
//! to a seq. Clients send it on their own after storing new messages (the
//! client library does, coalesced per chat). The position never moves back
//! and never past the last event. When it moves, the members whose messages
//! it newly covers get a delivery receipt (their "delivered" tick), and so
//! do my own sessions; the rest of a group is not bothered.

use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{Empty, MarkDeliveredRequest};
use ferrogram_core::ApiError;
use ferrogram_storage::chats::Receipt;

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::MarkDelivered {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: MarkDeliveredRequest,
    ) -> Result<Empty, ApiError> {
        super::read::advance(ctx, caller, &req, Receipt::Delivered).await
    }
}
