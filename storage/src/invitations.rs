//! Invitations to groups: consent before membership.
//!
//! Someone the invitee does not chat with (see [`may_add_directly`]) cannot
//! make them a member; their add stores an invitation instead. Each invitee
//! holds at most [`InvitationLimits::max_pending`] unexpired invitations: a
//! new one drops the oldest, so one attacker can make the server store a
//! bounded number of rows per victim, and the refusal never tells the
//! inviter anything. Only the event writer creates and accepts invitations
//! (inside its transaction, beside the membership checks); declining is a
//! plain delete.

use crate::users::parse_policy;
use crate::StorageError;
use ferrogram_core::ids::{ChatId, Timestamp, UserId};
use ferrogram_core::proto::{GroupAddPolicy, Invitation};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// How many invitations one account may have pending, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvitationLimits {
    pub max_pending: usize,
    pub ttl_ms: i64,
}

/// Pending invitations per invitee (`limits.max_pending_invitations`).
pub const DEFAULT_MAX_PENDING: usize = 100;
/// Lifetime of an invitation: 30 days (`limits.invitation_ttl_secs`).
pub const DEFAULT_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

impl Default for InvitationLimits {
    fn default() -> Self {
        Self {
            max_pending: DEFAULT_MAX_PENDING,
            ttl_ms: DEFAULT_TTL_MS,
        }
    }
}

/// The privacy setting of an account (`None`: no such account).
pub fn policy(conn: &Connection, user: UserId) -> Result<Option<GroupAddPolicy>, StorageError> {
    let name: Option<String> = conn
        .prepare_cached("SELECT who_can_add_me FROM users WHERE id = ?1")?
        .query_row([user.0], |r| r.get(0))
        .optional()?;
    name.as_deref().map(parse_policy).transpose()
}

/// Whether `adder` may make `invitee` a member without asking, by the
/// invitee's setting. "People I chat with" are the members of any group the
/// invitee is in (they consented to that group), and the peer of a direct
/// chat the invitee has written in or started: anyone can open a direct chat
/// with anyone, so a direct chat alone is no sign of consent.
pub fn may_add_directly(
    conn: &Connection,
    adder: UserId,
    invitee: UserId,
    policy: GroupAddPolicy,
) -> Result<bool, StorageError> {
    match policy {
        GroupAddPolicy::Everyone => Ok(true),
        GroupAddPolicy::Nobody => Ok(false),
        GroupAddPolicy::ChatPartners => Ok(conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM chat_members AS mine \
                 JOIN chat_members AS theirs ON theirs.chat_id = mine.chat_id \
                 JOIN chats ON chats.id = mine.chat_id \
                 WHERE mine.user_id = ?1 AND theirs.user_id = ?2 AND ( \
                     chats.kind = 'group' OR EXISTS (SELECT 1 FROM chat_events AS e \
                         WHERE e.chat_id = mine.chat_id AND e.sender = ?1)))",
            )?
            .query_row(params![invitee.0, adder.0], |r| r.get(0))?),
    }
}

/// Stores (or renews) an invitation of `invitee` to `chat_id`, drops the
/// invitee's expired ones and, beyond the cap, their oldest.
pub fn invite(
    conn: &Connection,
    chat_id: ChatId,
    invitee: UserId,
    invited_by: UserId,
    at: Timestamp,
    limits: InvitationLimits,
) -> Result<(), StorageError> {
    conn.prepare_cached("DELETE FROM chat_invitations WHERE user_id = ?1 AND expires_at <= ?2")?
        .execute(params![invitee.0, at])?;
    conn.prepare_cached(
        "INSERT INTO chat_invitations (chat_id, user_id, inviter_id, invited_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (chat_id, user_id) DO UPDATE SET inviter_id = excluded.inviter_id, \
         invited_at = excluded.invited_at, expires_at = excluded.expires_at",
    )?
    .execute(params![
        chat_id.0,
        invitee.0,
        invited_by.0,
        at,
        at.saturating_add_ms(limits.ttl_ms)
    ])?;
    let keep = i64::try_from(limits.max_pending).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "DELETE FROM chat_invitations WHERE user_id = ?1 AND chat_id IN ( \
             SELECT chat_id FROM chat_invitations WHERE user_id = ?1 \
             ORDER BY invited_at DESC, chat_id DESC LIMIT -1 OFFSET ?2)",
    )?
    .execute(params![invitee.0, keep])?;
    Ok(())
}

/// Removes the invitation; true when an unexpired one was there.
pub fn remove(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
    now: Timestamp,
) -> Result<bool, StorageError> {
    let expires_at: Option<Timestamp> = conn
        .prepare_cached(
            "DELETE FROM chat_invitations WHERE chat_id = ?1 AND user_id = ?2 \
             RETURNING expires_at",
        )?
        .query_row(params![chat_id.0, user.0], |r| r.get(0))
        .optional()?;
    Ok(expires_at.is_some_and(|at| at > now))
}

/// Removes every invitation to `chat_id` of the given users (they became
/// members another way).
pub fn remove_for(
    conn: &Connection,
    chat_id: ChatId,
    users: &[UserId],
) -> Result<(), StorageError> {
    let mut stmt =
        conn.prepare_cached("DELETE FROM chat_invitations WHERE chat_id = ?1 AND user_id = ?2")?;
    for user in users {
        stmt.execute(params![chat_id.0, user.0])?;
    }
    Ok(())
}

const INVITATION_SELECT: &str = "SELECT i.chat_id, c.title, i.invited_at, i.expires_at, \
     (SELECT count(*) FROM chat_members AS m WHERE m.chat_id = i.chat_id) AS member_count, \
     u.id, u.handle, u.display_name, u.bio \
     FROM chat_invitations AS i JOIN chats AS c ON c.id = i.chat_id \
     LEFT JOIN users AS u ON u.id = i.inviter_id";

fn invitation_from_row(row: &Row<'_>) -> rusqlite::Result<Invitation> {
    let inviter_id: Option<i64> = row.get(5)?;
    let inviter = match inviter_id {
        Some(id) => Some(ferrogram_core::proto::UserProfile {
            id: UserId(id),
            handle: row.get(6)?,
            display_name: row.get(7)?,
            bio: row.get(8)?,
        }),
        None => None,
    };
    Ok(Invitation {
        chat_id: ChatId(row.get(0)?),
        title: row.get(1)?,
        invited_at: row.get(2)?,
        expires_at: row.get(3)?,
        member_count: u32::try_from(row.get::<_, i64>(4)?).unwrap_or(u32::MAX),
        inviter,
    })
}

/// `user`'s unexpired invitations, newest first.
pub fn list(
    conn: &Connection,
    user: UserId,
    now: Timestamp,
) -> Result<Vec<Invitation>, StorageError> {
    let sql = format!(
        "{INVITATION_SELECT} WHERE i.user_id = ?1 AND i.expires_at > ?2 \
         ORDER BY i.invited_at DESC, i.chat_id DESC"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![user.0, now], invitation_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One unexpired invitation.
pub fn get(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
    now: Timestamp,
) -> Result<Option<Invitation>, StorageError> {
    let sql = format!(
        "{INVITATION_SELECT} WHERE i.chat_id = ?1 AND i.user_id = ?2 AND i.expires_at > ?3"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![chat_id.0, user.0, now], invitation_from_row)
        .optional()?)
}

/// How many invitations `user` has stored (expired ones included).
pub fn stored_count(conn: &Connection, user: UserId) -> Result<usize, StorageError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM chat_invitations WHERE user_id = ?1")?
        .query_row([user.0], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}
