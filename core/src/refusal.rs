//! Why the chat rules refused a change: the policy refusals (roles, ranks,
//! the owner's duties, authorship, group size, the storage quota), as
//! opposed to the data checks of the storage backend (no such chat, not a
//! member, ...).
//!
//! The rules themselves live in the handlers (`handlers/src/rules.rs`, the
//! `ChatRules` the server starts its event writer with); the writer runs them
//! inside its transaction and answers a refusal as
//! `WriteError::Refused(Refusal)`. The handlers map each refusal to its
//! stable error code.

use crate::proto::Role;

/// A change the chat rules do not allow. The messages name rules and
/// limits, never content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Members, titles and roles exist in groups only.
    #[error("direct chats have exactly their two members and no title")]
    DirectChat,
    #[error("this needs the {0:?} role")]
    RoleRequired(Role),
    /// The target's role is not below the actor's.
    #[error("only the owner may do this to an admin or the owner")]
    Outranked,
    #[error("the owner must transfer ownership before leaving")]
    OwnerMustTransfer,
    #[error("this cannot be done to yourself")]
    CannotTargetSelf,
    /// Ownership moves only with a transfer.
    #[error("ownership moves only with a transfer")]
    InvalidRole,
    #[error("a group has at most {max} members")]
    TooManyMembers { max: usize },
    #[error("only the author may change a message")]
    NotMessageAuthor,
    #[error("your account's storage of {quota} bytes of messages is full")]
    QuotaExceeded { quota: u64 },
}
