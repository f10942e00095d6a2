//! `chat.*`: creating chats, reading them, changing members, roles and
//! titles, typing notices.
//!
//! Every change goes through the event writer, which re-checks membership
//! and roles inside its transaction, so a member removed (or demoted) a
//! moment ago can no longer act. The committed events reach members through
//! the writer's commit listener; handlers add the unstored notices: who was
//! added to a chat (`chat_joined`) or taken out of it (`chat_removed`), who
//! was invited to one (`invited`).
//!
//! Consent: `create_group` and `add_members` make a member only of whom the
//! adder may add by that user's privacy setting (`me.update`'s
//! `who_can_add_me`); everyone else gets an invitation they accept or
//! decline (`chat.invitations`, `chat.accept_invitation`,
//! `chat.decline_invitation`). Ids without an account are answered exactly
//! like invitees.

pub mod accept_invitation;
pub mod add_members;
pub mod create_direct;
pub mod create_group;
pub mod decline_invitation;
pub mod get;
pub mod invitations;
pub mod leave;
pub mod list;
pub mod remove_member;
pub mod rename;
pub mod set_role;
pub mod transfer_ownership;
pub mod typing;

use crate::error::{internal, Fail};
use crate::HandlerCtx;
use ferrogram_core::ids::{ChatId, Timestamp, UserId};
use ferrogram_core::proto::{Chat, LiveEvent};
use ferrogram_core::{validate, ApiError, ErrorCode, Refusal};
use ferrogram_storage::chats::{self, ChatAccess, ChatRecord, Membership};
use ferrogram_storage::invitations as stored_invitations;
use ferrogram_storage::writer::{AppendRequest, Appended, Change, WriteContext, WriteError};

/// Longest group title, in characters.
pub const TITLE_MAX_CHARS: usize = 128;

/// The answer to a user who is not (or no longer) a member.
pub(crate) fn not_a_member() -> ApiError {
    ApiError::new(ErrorCode::NotAMember, "you are not a member of this chat")
}

pub(crate) fn chat_not_found() -> ApiError {
    ApiError::new(ErrorCode::ChatNotFound, "no such chat")
}

/// A writer refusal (or failure) as the client sees it.
pub(crate) fn write_error(e: &WriteError) -> ApiError {
    let code = match e {
        WriteError::ChatNotFound => return chat_not_found(),
        WriteError::NotAMember => return not_a_member(),
        WriteError::UserNotFound(_) => ErrorCode::UserNotFound,
        WriteError::NotMember(_)
        | WriteError::AlreadyMember(_)
        | WriteError::Refused(Refusal::CannotTargetSelf) => ErrorCode::InvalidMembers,
        WriteError::Refused(Refusal::DirectChat) => ErrorCode::NotAGroup,
        WriteError::Refused(Refusal::RoleRequired(_) | Refusal::Outranked) => {
            ErrorCode::NotChatAdmin
        }
        WriteError::Refused(Refusal::OwnerMustTransfer) => ErrorCode::OwnerMustTransfer,
        WriteError::Refused(Refusal::InvalidRole) => ErrorCode::BadRequest,
        WriteError::Refused(Refusal::TooManyMembers { .. }) => ErrorCode::TooManyMembers,
        WriteError::MembersChanged => ErrorCode::InvalidEnvelope,
        WriteError::MessageNotFound => ErrorCode::MessageNotFound,
        WriteError::Refused(Refusal::NotMessageAuthor) => ErrorCode::NotMessageAuthor,
        WriteError::ClientMsgIdReused => ErrorCode::InvalidClientMsgId,
        WriteError::Refused(Refusal::QuotaExceeded { .. }) => ErrorCode::QuotaExceeded,
        WriteError::NoInvitation => ErrorCode::InvitationNotFound,
        // Nothing was stored (the writer logged the cause): retrying is safe.
        WriteError::Failed | WriteError::Closed => {
            return ApiError::new(
                ErrorCode::Unavailable,
                "the change could not be stored; try again",
            )
        }
    };
    // Refusal messages name user ids and rules, never content.
    ApiError::new(code, e.to_string())
}

/// The chat and the caller's membership, or `chat_not_found` /
/// `not_a_member`.
pub(crate) async fn member_access(
    ctx: &HandlerCtx,
    chat_id: ChatId,
    user: UserId,
) -> Result<(ChatRecord, Membership), ApiError> {
    let access = ctx
        .storage
        .run(move |conn| -> Result<_, Fail> { Ok(chats::access(conn, chat_id, user)?) })
        .await?;
    match access {
        ChatAccess::NoSuchChat => Err(chat_not_found()),
        ChatAccess::NotAMember => Err(not_a_member()),
        ChatAccess::Member(chat, me) => Ok((chat, me)),
    }
}

/// The chat with its members, as `chat.get` and the change commands answer.
pub(crate) async fn load_chat(ctx: &HandlerCtx, chat_id: ChatId) -> Result<Chat, ApiError> {
    ctx.storage
        .run(move |conn| -> Result<_, Fail> { Ok(chats::chat(conn, chat_id)?) })
        .await?
        .ok_or_else(chat_not_found)
}

/// Applies a change through the writer, announces who joined or left, and
/// answers with the chat as it is now.
pub(crate) async fn change(
    ctx: &HandlerCtx,
    chat_id: ChatId,
    sender: UserId,
    change: Change,
) -> Result<Appended, ApiError> {
    let done = ctx
        .writer
        .append(
            AppendRequest {
                chat_id,
                sender,
                change,
            },
            WriteContext::default(),
        )
        .await
        .map_err(|e| write_error(&e))?;
    announce_joined(ctx, chat_id, done.added.clone()).await;
    announce_removed(ctx, chat_id, &done.removed);
    announce_invited(ctx, chat_id, done.invited.clone()).await;
    Ok(done)
}

/// The users a `create_group` / `add_members` named (sorted, no
/// duplicates) who are not members now: invitees and unknown ids alike.
pub(crate) fn not_added(named: &[UserId], members: &[UserId]) -> Vec<UserId> {
    named
        .iter()
        .filter(|u| members.binary_search(u).is_err())
        .copied()
        .collect()
}

/// Tells each of `users` (every session) of their new invitation.
pub(crate) async fn announce_invited(ctx: &HandlerCtx, chat_id: ChatId, users: Vec<UserId>) {
    if users.is_empty() {
        return;
    }
    let now = Timestamp::now();
    let found = ctx
        .storage
        .run(move |conn| -> Result<_, Fail> {
            let mut found = Vec::with_capacity(users.len());
            for user in users {
                if let Some(invitation) = stored_invitations::get(conn, chat_id, user, now)? {
                    found.push((user, invitation));
                }
            }
            Ok(found)
        })
        .await;
    match found {
        Ok(found) => {
            for (user, invitation) in found {
                ctx.notifier
                    .live_event(&[user], &LiveEvent::Invited { invitation });
            }
        }
        // Stored all the same: `chat.invitations` lists it.
        Err(Fail::Storage(e)) => {
            internal(&e);
        }
        Err(Fail::Api(_)) => {}
    }
}

/// A group title: trimmed, 1 to 128 characters, no control or invisible
/// formatting characters (`validate::hidden_format_char`).
pub(crate) fn title(raw: &str) -> Result<String, ApiError> {
    let title = raw.trim();
    let bad = |why: &str| ApiError::new(ErrorCode::InvalidTitle, format!("title {why}"));
    if title.is_empty() {
        return Err(bad("must not be empty"));
    }
    if title.chars().count() > TITLE_MAX_CHARS {
        return Err(bad("must be at most 128 characters"));
    }
    if title.chars().any(char::is_control) {
        return Err(bad("must not contain control characters"));
    }
    if validate::hidden_format_char(title).is_some() {
        return Err(bad(validate::HIDDEN_FORMAT_MESSAGE));
    }
    Ok(title.to_owned())
}

/// Tells each of `users` (every session) that they are now in the chat,
/// with the chat as they see it.
pub(crate) async fn announce_joined(ctx: &HandlerCtx, chat_id: ChatId, users: Vec<UserId>) {
    if users.is_empty() {
        return;
    }
    let summaries = ctx
        .storage
        .run(move |conn| -> Result<_, Fail> {
            let mut found = Vec::with_capacity(users.len());
            for user in users {
                if let Some(summary) = chats::summary(conn, chat_id, user)? {
                    found.push((user, summary));
                }
            }
            Ok(found)
        })
        .await;
    match summaries {
        Ok(summaries) => {
            for (user, summary) in summaries {
                let event = LiveEvent::ChatJoined {
                    chat: Box::new(summary),
                };
                ctx.notifier.live_event(&[user], &event);
            }
        }
        // The change is stored; the new members find the chat on their next
        // `chat.list`. Do not fail the request over a notice.
        Err(Fail::Storage(e)) => {
            internal(&e);
        }
        Err(Fail::Api(_)) => {}
    }
}

/// Tells `users` (every session) that the chat is gone for them.
pub(crate) fn announce_removed(ctx: &HandlerCtx, chat_id: ChatId, users: &[UserId]) {
    if !users.is_empty() {
        ctx.notifier
            .live_event(users, &LiveEvent::ChatRemoved { chat_id });
    }
}
