//! `message.edit`: a new envelope for one of my messages (not deleted),
//! checked like a new message. The edit takes the next seq and names its
//! target; clients show the target as edited. The envelope's own
//! `client_msg_id` must be new (a retry of the same edit is a duplicate).

use super::{ack, check_origin, check_structure};
use crate::chat::{member_access, write_error};
use crate::error::Fail;
use crate::HandlerCtx;
use async_trait::async_trait;
use ferrogram_core::command::{Caller, CommandHandler};
use ferrogram_core::commands;
use ferrogram_core::proto::{EditMessageRequest, MessageAck};
use ferrogram_core::ApiError;
use ferrogram_storage::chats;
use ferrogram_storage::writer::{AppendRequest, Change, WriteContext};

#[async_trait]
impl CommandHandler<HandlerCtx> for commands::EditMessage {
    async fn handle(
        &self,
        ctx: &HandlerCtx,
        caller: &Caller,
        req: EditMessageRequest,
    ) -> Result<MessageAck, ApiError> {
        let me = caller.require_session()?.user_id;
        let chat_id = req.chat_id;
        check_origin(&req.envelope, chat_id, me)?;
        member_access(ctx, chat_id, me).await?;
        let members = ctx
            .storage
            .run(move |conn| -> Result<_, Fail> { Ok(chats::member_ids(conn, chat_id)?) })
            .await?;
        check_structure(ctx, &req.envelope, &members)?;
        // Authorship, the target and retries are checked by the writer, in
        // its transaction.
        let done = ctx
            .writer
            .append(
                AppendRequest {
                    chat_id,
                    sender: me,
                    change: Change::Edit {
                        target_seq: req.target_seq,
                        envelope: req.envelope,
                    },
                },
                WriteContext::default(),
            )
            .await
            .map_err(|e| write_error(&e))?;
        Ok(ack(done.event(), done.duplicate))
    }
}
