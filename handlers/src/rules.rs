//! Who may do what in a chat: the server's [`ChatRules`], which the event
//! writer runs inside its batch transaction (`EventWriter::start(..,
//! Arc::new(ChatPolicy::from_settings(&settings)), ..)`).
//!
//! Each decision judges facts the writer has already read inside that
//! transaction, so a rule and the write it guards cannot race. Every
//! decision that is policy (roles, ranks, the owner's duties, authorship,
//! group size, the storage quota, who inherits a group) is made here;
//! storage keeps the data checks (no such chat or message, a reused
//! `client_msg_id`, wraps that no longer name the members). A refusal is a
//! [`Refusal`]; `chat::write_error` gives each its error code.

use crate::Settings;
use ferrogram_core::ids::UserId;
use ferrogram_core::proto::{ChatKind, Role};
use ferrogram_core::Refusal;
use ferrogram_storage::chats::{ChatRecord, Membership};
use ferrogram_storage::rules::{ChatRules, StorageUse};

/// The server's chat rules, with the limits of its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatPolicy {
    /// Most members of a group, its owner included (`limits.max_group_members`).
    pub max_group_members: usize,
    /// Bytes of message and edit bodies one account may have stored
    /// (`limits.account_storage_bytes`); 0 means no limit.
    pub account_storage_bytes: u64,
}

impl ChatPolicy {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            max_group_members: settings.max_group_members,
            account_storage_bytes: settings.account_storage_bytes,
        }
    }
}

impl ChatRules for ChatPolicy {
    fn may_create_direct(&self, creator: UserId, peer: UserId) -> Result<(), Refusal> {
        not_self(creator, peer)
    }

    fn may_hold(&self, members: usize) -> Result<(), Refusal> {
        fits(members, self.max_group_members)
    }

    /// Admins and the owner, groups only.
    fn may_add_members(&self, chat: &ChatRecord, me: &Membership) -> Result<(), Refusal> {
        require_group(chat)?;
        require_role(me, Role::Admin)
    }

    fn may_accept_invitation(&self, chat: &ChatRecord) -> Result<(), Refusal> {
        require_group(chat)
    }

    /// Admins remove members; the owner removes admins and members; nobody
    /// removes themselves (they leave).
    fn may_remove_member(
        &self,
        chat: &ChatRecord,
        me: &Membership,
        target: UserId,
        membership: Option<&Membership>,
    ) -> Result<(), Refusal> {
        require_group(chat)?;
        require_role(me, Role::Admin)?;
        not_self(me.user_id, target)?;
        match membership {
            Some(target) => may_remove(me, target),
            None => Ok(()),
        }
    }

    /// Groups only; the owner only when alone (or after a transfer).
    fn may_leave(&self, chat: &ChatRecord, me: &Membership, members: usize) -> Result<(), Refusal> {
        require_group(chat)?;
        may_leave(me, members)
    }

    /// Admins and the owner, groups only.
    fn may_rename(&self, chat: &ChatRecord, me: &Membership) -> Result<(), Refusal> {
        require_group(chat)?;
        require_role(me, Role::Admin)
    }

    /// The owner makes another member admin or member.
    fn may_set_role(
        &self,
        chat: &ChatRecord,
        me: &Membership,
        target: UserId,
        role: Role,
    ) -> Result<(), Refusal> {
        require_group(chat)?;
        require_role(me, Role::Owner)?;
        assignable(role)?;
        not_self(me.user_id, target)
    }

    /// The owner hands the group to another member.
    fn may_transfer_ownership(
        &self,
        chat: &ChatRecord,
        me: &Membership,
        target: UserId,
    ) -> Result<(), Refusal> {
        require_group(chat)?;
        require_role(me, Role::Owner)?;
        not_self(me.user_id, target)
    }

    fn may_alter_message(&self, me: &Membership, author: UserId) -> Result<(), Refusal> {
        may_alter_message(me.user_id, author)
    }

    fn may_store(&self, _sender: UserId, usage: StorageUse) -> Result<(), Refusal> {
        within_quota(usage, self.account_storage_bytes)
    }

    fn successor(&self, remaining: &[Membership]) -> Option<UserId> {
        successor(remaining).map(|m| m.user_id)
    }
}

/// Membership changes, titles and roles exist in groups only.
fn require_group(chat: &ChatRecord) -> Result<(), Refusal> {
    if chat.kind == ChatKind::Group {
        Ok(())
    } else {
        Err(Refusal::DirectChat)
    }
}

/// `me` holds at least `role`.
fn require_role(me: &Membership, role: Role) -> Result<(), Refusal> {
    if me.role >= role {
        Ok(())
    } else {
        Err(Refusal::RoleRequired(role))
    }
}

/// A change aimed at another member, never at oneself.
fn not_self(actor: UserId, target: UserId) -> Result<(), Refusal> {
    if actor == target {
        Err(Refusal::CannotTargetSelf)
    } else {
        Ok(())
    }
}

/// Admins remove members; the owner removes admins and members.
fn may_remove(me: &Membership, target: &Membership) -> Result<(), Refusal> {
    if target.role >= me.role {
        Err(Refusal::Outranked)
    } else {
        Ok(())
    }
}

/// The owner leaves only when alone (or after a transfer).
fn may_leave(me: &Membership, members: usize) -> Result<(), Refusal> {
    if me.role == Role::Owner && members > 1 {
        Err(Refusal::OwnerMustTransfer)
    } else {
        Ok(())
    }
}

/// The owner makes members admins or members; ownership moves only with a
/// transfer.
fn assignable(role: Role) -> Result<(), Refusal> {
    if role == Role::Owner {
        Err(Refusal::InvalidRole)
    } else {
        Ok(())
    }
}

/// Only the author edits or deletes a message.
fn may_alter_message(actor: UserId, author: UserId) -> Result<(), Refusal> {
    if actor == author {
        Ok(())
    } else {
        Err(Refusal::NotMessageAuthor)
    }
}

/// A group of `members` fits under `max`.
fn fits(members: usize, max: usize) -> Result<(), Refusal> {
    if members > max {
        Err(Refusal::TooManyMembers { max })
    } else {
        Ok(())
    }
}

/// The new bytes on top of those stored stay within `quota` (0: no limit).
fn within_quota(usage: StorageUse, quota: u64) -> Result<(), Refusal> {
    if quota > 0 && usage.stored.saturating_add(usage.adding) > quota {
        Err(Refusal::QuotaExceeded { quota })
    } else {
        Ok(())
    }
}

/// Who owns a group after its owner's account is deleted: the
/// longest-standing admin, else the longest-standing member.
fn successor(remaining: &[Membership]) -> Option<&Membership> {
    remaining
        .iter()
        .max_by_key(|m| (m.role, std::cmp::Reverse((m.joined_seq, m.user_id))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogram_core::ids::{Seq, Timestamp};

    fn member(id: i64, role: Role, joined_seq: i64) -> Membership {
        Membership {
            user_id: UserId(id),
            role,
            joined_at: Timestamp::EPOCH,
            joined_seq: Seq::new(joined_seq),
            read_seq: Seq::ZERO,
            delivered_seq: Seq::ZERO,
        }
    }

    #[test]
    fn the_quota_counts_what_is_stored_plus_what_comes_and_zero_is_none() {
        let usage = |stored, adding| StorageUse { stored, adding };
        assert_eq!(within_quota(usage(90, 10), 100), Ok(()));
        assert_eq!(
            within_quota(usage(90, 11), 100),
            Err(Refusal::QuotaExceeded { quota: 100 })
        );
        assert_eq!(
            within_quota(usage(u64::MAX, 1), 100),
            Err(Refusal::QuotaExceeded { quota: 100 })
        );
        assert_eq!(within_quota(usage(u64::MAX, 1), 0), Ok(()));
    }

    #[test]
    fn the_successor_is_the_longest_standing_admin_else_member() {
        let members = [
            member(5, Role::Member, 1),
            member(3, Role::Admin, 4),
            member(4, Role::Admin, 2),
        ];
        let policy = ChatPolicy {
            max_group_members: 10,
            account_storage_bytes: 0,
        };
        assert_eq!(policy.successor(&members), Some(UserId(4)));
        assert_eq!(policy.successor(&members[..1]), Some(UserId(5)));
        // the same standing: the lower id
        let twins = [member(7, Role::Member, 1), member(6, Role::Member, 1)];
        assert_eq!(policy.successor(&twins), Some(UserId(6)));
        assert_eq!(policy.successor(&[]), None);
    }
}
