//! The chat rules the event writer asks inside its transaction.
//!
//! Storage keeps the data checks (no such chat or message, not a member,
//! already a member, a reused `client_msg_id`, wraps that no longer name the
//! members, no invitation). Every policy decision (who may do what in a
//! group: roles, ranks, the owner's duties, authorship, group size, the
//! storage quota, who inherits a group) is a method of [`ChatRules`], given
//! the facts the writer has read in the same transaction, so a rule and the
//! write it guards cannot race. The server's rules are the handlers'
//! (`handlers/src/rules.rs`); the writer is started with them
//! (`EventWriter::start`).
//!
//! Each method is called at the point of the change where the old checks
//! were made, so the order of refusals (and the error a client sees when
//! several apply) stays as it was: a policy method runs before the data
//! checks that follow it and after those that precede it.

use crate::chats::{ChatRecord, Membership};
use ferrogram_core::ids::UserId;
use ferrogram_core::proto::Role;
use ferrogram_core::Refusal;

/// An account's stored message bytes, as the quota sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageUse {
    /// Bytes of message and edit bodies stored before this one.
    pub stored: u64,
    /// Bytes the new message or edit adds.
    pub adding: u64,
}

/// Who may do what in a chat. Called on the writer's thread, inside its
/// transaction: implementations must be quick and must not block (no I/O,
/// no locks held long); every fact they need is an argument.
pub trait ChatRules: Send + Sync + 'static {
    /// `creator` opens the direct chat with `peer` (before the writer checks
    /// that both accounts exist).
    fn may_create_direct(&self, creator: UserId, peer: UserId) -> Result<(), Refusal>;

    /// A group would have `members` members, its owner included: on
    /// creation (every named id counted), an add (the members plus every
    /// named id) and an accepted invitation.
    fn may_hold(&self, members: usize) -> Result<(), Refusal>;

    /// `me` adds members to `chat` (before the writer checks that none of
    /// them is a member already; the size comes after, [`Self::may_hold`]).
    fn may_add_members(&self, chat: &ChatRecord, me: &Membership) -> Result<(), Refusal>;

    /// The invitee takes up an invitation to `chat` (the invitation exists;
    /// the size comes after, [`Self::may_hold`]).
    fn may_accept_invitation(&self, chat: &ChatRecord) -> Result<(), Refusal>;

    /// `me` removes `target` from `chat`. `membership`: the target's, or
    /// `None` when they are no member (the writer then answers `NotMember`
    /// if the rules allowed the rest).
    fn may_remove_member(
        &self,
        chat: &ChatRecord,
        me: &Membership,
        target: UserId,
        membership: Option<&Membership>,
    ) -> Result<(), Refusal>;

    /// `me` leaves `chat`, which has `members` members (`me` included).
    fn may_leave(&self, chat: &ChatRecord, me: &Membership, members: usize) -> Result<(), Refusal>;

    /// `me` renames `chat`.
    fn may_rename(&self, chat: &ChatRecord, me: &Membership) -> Result<(), Refusal>;

    /// `me` gives `target` the role `role` (before the writer checks that
    /// `target` is a member).
    fn may_set_role(
        &self,
        chat: &ChatRecord,
        me: &Membership,
        target: UserId,
        role: Role,
    ) -> Result<(), Refusal>;

    /// `me` hands `chat` over to `target` (before the writer checks that
    /// `target` is a member).
    fn may_transfer_ownership(
        &self,
        chat: &ChatRecord,
        me: &Membership,
        target: UserId,
    ) -> Result<(), Refusal>;

    /// `me` edits or deletes a message of `author` (the message exists and
    /// `me` may see it).
    fn may_alter_message(&self, me: &Membership, author: UserId) -> Result<(), Refusal>;

    /// `sender` stores a new message or edit (every other check passed;
    /// the last one before the event is written).
    fn may_store(&self, sender: UserId, usage: StorageUse) -> Result<(), Refusal>;

    /// Who owns a group after its owner's account is deleted, among the
    /// `remaining` members (not empty); `None`: nobody.
    fn successor(&self, remaining: &[Membership]) -> Option<UserId>;
}
