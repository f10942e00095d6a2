//! `message.delete`: delete one of my messages for everyone. Recorded as a
//! `delete` event naming the target; deleting again answers with the first
//! deletion (`duplicate: true`).

use super::ack;
use crate::chat::write_error;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{DeleteMessageRequest, MessageAck};
use ferrogram_core::ApiError;
use ferrogram_storage::writer::{AppendRequest, Change, WriteContext};

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::DeleteMessage {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: DeleteMessageRequest,
    ) -> Result<MessageAck, ApiError> {
        let me = caller.require_session()?.user_id;
        let done = ctx
            .writer
            .append(
                AppendRequest {
                    chat_id: req.chat_id,
                    sender: me,
                    change: Change::Delete {
                        target_seq: req.target_seq,
                    },
                },
                WriteContext::default(),
            )
            .await
            .map_err(|e| write_error(&e))?;
        Ok(ack(done.event(), done.duplicate))
    }
}
