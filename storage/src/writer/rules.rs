//! Who may do what in a chat: the writer's policy decisions, kept apart
//! from the row mechanics of `apply.rs`.
//!
//! Each function judges facts `apply.rs` has already read inside the batch
//! transaction, so a rule and the write it guards cannot race. Every
//! decision that is policy (roles, ranks, the owner's duties, authorship,
//! group size, the storage quota, who inherits a group) is made here;
//! `apply.rs` keeps the data checks (no such chat or message, a reused
//! `client_msg_id`, wraps that no longer name the members). Issue 12 moves
//! these rules out of storage into the handlers behind a trait the writer
//! calls in its transaction; this module is the seam for that move.

use super::WriteError;
use crate::chats::{ChatRecord, Membership};
use crate::StorageError;
use ferrogram_core::ids::UserId;
use ferrogram_core::proto::{ChatKind, Role};

/// Membership changes, titles and roles exist in groups only.
pub(super) fn require_group(chat: &ChatRecord) -> Result<(), WriteError> {
    if chat.kind == ChatKind::Group {
        Ok(())
    } else {
        Err(WriteError::DirectChat)
    }
}

/// `me` holds at least `role`.
pub(super) fn require_role(me: &Membership, role: Role) -> Result<(), WriteError> {
    if me.role >= role {
        Ok(())
    } else {
        Err(WriteError::RoleRequired(role))
    }
}

/// A change aimed at another member, never at oneself.
pub(super) fn not_self(actor: UserId, target: UserId) -> Result<(), WriteError> {
    if actor == target {
        Err(WriteError::CannotTargetSelf)
    } else {
        Ok(())
    }
}

/// Admins remove members; the owner removes admins and members.
pub(super) fn may_remove(me: &Membership, target: &Membership) -> Result<(), WriteError> {
    if target.role >= me.role {
        Err(WriteError::Outranked)
    } else {
        Ok(())
    }
}

/// The owner leaves only when alone (or after a transfer); `members` is
/// read only for the owner.
pub(super) fn may_leave(
    me: &Membership,
    members: impl FnOnce() -> Result<usize, StorageError>,
) -> Result<Result<(), WriteError>, StorageError> {
    Ok(if me.role == Role::Owner && members()? > 1 {
        Err(WriteError::OwnerMustTransfer)
    } else {
        Ok(())
    })
}

/// The owner makes members admins or members; ownership moves only with a
/// transfer.
pub(super) fn assignable(role: Role) -> Result<(), WriteError> {
    if role == Role::Owner {
        Err(WriteError::InvalidRole)
    } else {
        Ok(())
    }
}

/// Only the author edits or deletes a message.
pub(super) fn may_alter_message(actor: UserId, author: UserId) -> Result<(), WriteError> {
    if actor == author {
        Ok(())
    } else {
        Err(WriteError::NotMessageAuthor)
    }
}

/// A group of `members` fits under `max`.
pub(super) fn fits(members: usize, max: usize) -> Result<(), WriteError> {
    if members > max {
        Err(WriteError::TooManyMembers { max })
    } else {
        Ok(())
    }
}

/// `bytes` more on top of `stored` stay within `quota`.
pub(super) fn within_quota(stored: i64, bytes: i64, quota: u64) -> Result<(), WriteError> {
    if stored.saturating_add(bytes) as u64 > quota {
        Err(WriteError::QuotaExceeded { quota })
    } else {
        Ok(())
    }
}

/// Who owns a group after its owner's account is deleted: the
/// longest-standing admin, else the longest-standing member.
pub(super) fn successor(remaining: &[Membership]) -> Option<&Membership> {
    remaining
        .iter()
        .max_by_key(|m| (m.role, std::cmp::Reverse((m.joined_seq, m.user_id))))
}
