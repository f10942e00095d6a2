//! Chats and their members: lookups, the views `chat.get` and `chat.list`
//! answer with, and the row changes the event writer makes.
//!
//! Reading functions are public; the functions that change chats or members
//! are `pub(crate)`: they run only inside [`crate::writer`]'s transaction,
//! together with the event that records the change.

use crate::events;
use crate::StorageError;
use ferrogram_core::crypto::envelope::event_for_reader;
use ferrogram_core::ids::{ChatId, Seq, Timestamp, UserId};
use ferrogram_core::proto::{Chat, ChatEvent, ChatKind, ChatSummary, Member, Role, UserProfile};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// A chat without its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRecord {
    pub id: ChatId,
    pub kind: ChatKind,
    pub title: Option<String>,
    pub created_at: Timestamp,
    pub last_seq: Seq,
}

/// One membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub user_id: UserId,
    pub role: Role,
    pub joined_at: Timestamp,
    /// The member sees the log from this seq on.
    pub joined_seq: Seq,
    pub read_seq: Seq,
    /// Highest seq a device of this member acknowledged as received.
    pub delivered_seq: Seq,
}

/// What a user may do with a chat, in one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatAccess {
    NoSuchChat,
    /// The chat exists; the user is not (or no longer) a member.
    NotAMember,
    Member(ChatRecord, Membership),
}

pub(crate) fn kind_name(kind: ChatKind) -> &'static str {
    match kind {
        ChatKind::Direct => "direct",
        ChatKind::Group => "group",
    }
}

fn parse_kind(name: &str) -> Result<ChatKind, StorageError> {
    match name {
        "direct" => Ok(ChatKind::Direct),
        "group" => Ok(ChatKind::Group),
        _ => Err(StorageError::Corrupt { column: "kind" }),
    }
}

pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

fn parse_role(name: &str) -> Result<Role, StorageError> {
    match name {
        "owner" => Ok(Role::Owner),
        "admin" => Ok(Role::Admin),
        "member" => Ok(Role::Member),
        _ => Err(StorageError::Corrupt { column: "role" }),
    }
}

fn chat_from_row(row: &Row<'_>) -> Result<ChatRecord, StorageError> {
    let kind: String = row.get("kind")?;
    Ok(ChatRecord {
        id: ChatId(row.get("id")?),
        kind: parse_kind(&kind)?,
        title: row.get("title")?,
        created_at: row.get("created_at")?,
        last_seq: row.get("last_seq")?,
    })
}

fn membership_from_row(row: &Row<'_>) -> Result<Membership, StorageError> {
    let role: String = row.get("role")?;
    Ok(Membership {
        user_id: UserId(row.get("user_id")?),
        role: parse_role(&role)?,
        joined_at: row.get("joined_at")?,
        joined_seq: row.get("joined_seq")?,
        read_seq: row.get("read_seq")?,
        delivered_seq: row.get("delivered_seq")?,
    })
}

fn profile_from_row(row: &Row<'_>) -> rusqlite::Result<UserProfile> {
    Ok(UserProfile {
        id: UserId(row.get("id")?),
        handle: row.get("handle")?,
        display_name: row.get("display_name")?,
        bio: row.get("bio")?,
    })
}

pub fn by_id(conn: &Connection, chat_id: ChatId) -> Result<Option<ChatRecord>, StorageError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, kind, title, created_at, last_seq FROM chats WHERE id = ?1")?;
    let mut rows = stmt.query([chat_id.0])?;
    rows.next()?.map(chat_from_row).transpose()
}

pub fn membership(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
) -> Result<Option<Membership>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, role, joined_at, joined_seq, read_seq, delivered_seq FROM chat_members \
         WHERE chat_id = ?1 AND user_id = ?2",
    )?;
    let mut rows = stmt.query(params![chat_id.0, user.0])?;
    rows.next()?.map(membership_from_row).transpose()
}

/// The chat and the user's membership, or why there is none.
pub fn access(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
) -> Result<ChatAccess, StorageError> {
    let Some(chat) = by_id(conn, chat_id)? else {
        return Ok(ChatAccess::NoSuchChat);
    };
    Ok(match membership(conn, chat_id, user)? {
        Some(me) => ChatAccess::Member(chat, me),
        None => ChatAccess::NotAMember,
    })
}

/// Current members, sorted by user id.
pub fn memberships(conn: &Connection, chat_id: ChatId) -> Result<Vec<Membership>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, role, joined_at, joined_seq, read_seq, delivered_seq FROM chat_members \
         WHERE chat_id = ?1 ORDER BY user_id",
    )?;
    let mut rows = stmt.query([chat_id.0])?;
    let mut members = Vec::new();
    while let Some(row) = rows.next()? {
        members.push(membership_from_row(row)?);
    }
    Ok(members)
}

/// Ids of the current members, sorted: what an envelope's wraps must cover.
pub fn member_ids(conn: &Connection, chat_id: ChatId) -> Result<Vec<UserId>, StorageError> {
    let mut stmt = conn
        .prepare_cached("SELECT user_id FROM chat_members WHERE chat_id = ?1 ORDER BY user_id")?;
    let ids = stmt.query_map([chat_id.0], |r| r.get(0).map(UserId))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

pub fn member_count(conn: &Connection, chat_id: ChatId) -> Result<usize, StorageError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM chat_members WHERE chat_id = ?1")?
        .query_row([chat_id.0], |r| r.get(0))?;
    Ok(n as usize)
}

/// Ids of the chats `user` is a member of, ascending.
pub fn chat_ids_for_user(conn: &Connection, user: UserId) -> Result<Vec<ChatId>, StorageError> {
    let mut stmt = conn
        .prepare_cached("SELECT chat_id FROM chat_members WHERE user_id = ?1 ORDER BY chat_id")?;
    let ids = stmt.query_map([user.0], |r| r.get(0).map(ChatId))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// Whether two users share at least one chat (presence is shown only then).
pub fn share_a_chat(conn: &Connection, a: UserId, b: UserId) -> Result<bool, StorageError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM chat_members AS x JOIN chat_members AS y \
             ON x.chat_id = y.chat_id WHERE x.user_id = ?1 AND y.user_id = ?2)",
        )?
        .query_row(params![a.0, b.0], |r| r.get(0))?)
}

/// Everyone who shares at least one chat with `user` (not `user`), sorted:
/// who is told about `user`'s presence.
pub fn co_members(conn: &Connection, user: UserId) -> Result<Vec<UserId>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT other.user_id FROM chat_members AS mine \
         JOIN chat_members AS other ON other.chat_id = mine.chat_id \
         WHERE mine.user_id = ?1 AND other.user_id != ?1 ORDER BY other.user_id",
    )?;
    let ids = stmt.query_map([user.0], |r| r.get(0).map(UserId))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// The direct chat between two users, if there is one.
pub fn direct_between(
    conn: &Connection,
    a: UserId,
    b: UserId,
) -> Result<Option<ChatId>, StorageError> {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    Ok(conn
        .prepare_cached("SELECT chat_id FROM direct_chats WHERE user_low = ?1 AND user_high = ?2")?
        .query_row(params![low.0, high.0], |r| r.get(0))
        .optional()?
        .map(ChatId))
}

/// The public profile of an account, if it still exists.
pub fn profile(conn: &Connection, user: UserId) -> Result<Option<UserProfile>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT id, handle, display_name, bio FROM users WHERE id = ?1")?
        .query_row([user.0], profile_from_row)
        .optional()?)
}

/// Which of `users` have no account (in the order given).
pub fn unknown_users(conn: &Connection, users: &[UserId]) -> Result<Vec<UserId>, StorageError> {
    let mut stmt = conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)")?;
    let mut unknown = Vec::new();
    for user in users {
        let exists: bool = stmt.query_row([user.0], |r| r.get(0))?;
        if !exists {
            unknown.push(*user);
        }
    }
    Ok(unknown)
}

/// The members with their profiles, sorted by user id.
pub fn members(conn: &Connection, chat_id: ChatId) -> Result<Vec<Member>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.handle, u.display_name, u.bio, m.role, m.joined_at, m.read_seq, \
                m.delivered_seq \
         FROM chat_members AS m JOIN users AS u ON u.id = m.user_id \
         WHERE m.chat_id = ?1 ORDER BY u.id",
    )?;
    let mut rows = stmt.query([chat_id.0])?;
    let mut members = Vec::new();
    while let Some(row) = rows.next()? {
        let role: String = row.get("role")?;
        members.push(Member {
            user: profile_from_row(row)?,
            role: parse_role(&role)?,
            joined_at: row.get("joined_at")?,
            read_seq: row.get("read_seq")?,
            delivered_seq: row.get("delivered_seq")?,
        });
    }
    Ok(members)
}

/// The chat with its members (`chat.get`).
pub fn chat(conn: &Connection, chat_id: ChatId) -> Result<Option<Chat>, StorageError> {
    let Some(record) = by_id(conn, chat_id)? else {
        return Ok(None);
    };
    Ok(Some(Chat {
        id: record.id,
        kind: record.kind,
        title: record.title,
        created_at: record.created_at,
        last_seq: record.last_seq,
        members: members(conn, chat_id)?,
        invited: Vec::new(),
    }))
}

/// My read position in a chat (`None` if I am not a member).
pub fn my_read_seq(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
) -> Result<Option<Seq>, StorageError> {
    Ok(membership(conn, chat_id, user)?.map(|m| m.read_seq))
}

/// One row of `chat.list` as `user` sees it (`None` if not a member).
pub fn summary(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
) -> Result<Option<ChatSummary>, StorageError> {
    let ChatAccess::Member(chat, me) = access(conn, chat_id, user)? else {
        return Ok(None);
    };
    summary_of(conn, &chat, &me).map(Some)
}

fn summary_of(
    conn: &Connection,
    chat: &ChatRecord,
    me: &Membership,
) -> Result<ChatSummary, StorageError> {
    let peer = match chat.kind {
        ChatKind::Direct => {
            let peer_id = member_ids(conn, chat.id)?
                .into_iter()
                .find(|id| *id != me.user_id);
            match peer_id {
                Some(id) => profile(conn, id)?,
                None => None,
            }
        }
        ChatKind::Group => None,
    };
    let (others_read_seq, others_delivered_seq) = others_positions(conn, chat.id, me.user_id)?;
    Ok(ChatSummary {
        id: chat.id,
        kind: chat.kind,
        title: chat.title.clone(),
        peer,
        member_count: u32::try_from(member_count(conn, chat.id)?).unwrap_or(u32::MAX),
        my_role: me.role,
        last_seq: chat.last_seq,
        my_read_seq: me.read_seq,
        unread_count: events::unread_count(conn, chat.id, me.user_id, me.read_seq)?,
        others_read_seq,
        others_delivered_seq,
        // Only the reader's own key wrap travels (envelope version 2).
        last_message: events::last_message(conn, chat.id, me.joined_seq)?
            .map(|event| event_for_reader(event, me.user_id)),
    })
}

/// What [`visible_events`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    NoSuchChat,
    NotAMember,
    /// A page of the log as the member receives it, and whether more remain.
    Page {
        events: Vec<ChatEvent>,
        more: bool,
    },
}

/// Which events of a chat [`visible_events`] reads (see [`events::history`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRange {
    pub before_seq: Option<Seq>,
    pub after_seq: Option<Seq>,
    pub limit: u32,
    pub max_bytes: usize,
}

/// What `reader` may see of a chat's log: the one read behind
/// `message.history` and the `resume` backlog. Members only, from the event
/// that added them on (older messages were not encrypted for them), each
/// message with only the reader's own key wrap, the page capped in events
/// and in bytes.
pub fn visible_events(
    conn: &Connection,
    chat_id: ChatId,
    reader: UserId,
    range: PageRange,
) -> Result<Visible, StorageError> {
    let me = match access(conn, chat_id, reader)? {
        ChatAccess::NoSuchChat => return Ok(Visible::NoSuchChat),
        ChatAccess::NotAMember => return Ok(Visible::NotAMember),
        ChatAccess::Member(_, me) => me,
    };
    let query = events::HistoryQuery {
        first_visible: me.joined_seq,
        before_seq: range.before_seq,
        after_seq: range.after_seq,
        limit: range.limit,
        max_bytes: range.max_bytes,
    };
    let (events, more) = events::history(conn, chat_id, reader, &query)?;
    Ok(Visible::Page { events, more })
}

/// Where a page of `chat.list` continues: after this chat in the order of
/// the listing that began at `as_of` (see [`list_page`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    /// When the first page was read: activity after it does not reorder
    /// the later pages.
    pub as_of: Timestamp,
    /// The last chat of the previous page: its activity time and id.
    pub active: Timestamp,
    pub chat_id: ChatId,
}

/// One page of `chat.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub chats: Vec<ChatSummary>,
    /// Where the next page starts; None on the last page.
    pub next: Option<ListCursor>,
}

/// Every chat of `user`, the most recently active first (by the time of the
/// last message, or of creation when there is none), in one list. Tests and
/// tools; `chat.list` pages with [`list_page`].
pub fn list_for_user(conn: &Connection, user: UserId) -> Result<Vec<ChatSummary>, StorageError> {
    let now = ferrogram_core::ids::Timestamp::now();
    Ok(list_page(conn, user, None, now, u32::MAX, usize::MAX)?.chats)
}

/// One page of `user`'s chats, the most recently active first (by the time
/// of the last message, or of creation when there is none; ties by the
/// larger chat id): those after `cursor` (from the start without one), at
/// most `limit` and at most `max_bytes` of JSON together, but at least one.
///
/// The order is the one at the first page (`now` then, kept in the cursor):
/// a chat that became active since does not move, so paging neither skips
/// nor repeats a chat (one whose last message was deleted meanwhile may come
/// twice). Chats joined after the first page come later as live events.
pub fn list_page(
    conn: &Connection,
    user: UserId,
    cursor: Option<ListCursor>,
    now: Timestamp,
    limit: u32,
    max_bytes: usize,
) -> Result<ListPage, StorageError> {
    let as_of = cursor.map_or(now, |c| c.as_of);
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.kind, c.title, c.created_at, c.last_seq, \
                m.user_id, m.role, m.joined_at, m.joined_seq, m.read_seq, m.delivered_seq \
         FROM chat_members AS m JOIN chats AS c ON c.id = m.chat_id \
         WHERE m.user_id = ?1",
    )?;
    let mut rows = stmt.query([user.0])?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        found.push((chat_from_row(row)?, membership_from_row(row)?));
    }
    drop(rows);
    let mut ordered = Vec::with_capacity(found.len());
    for (chat, me) in found {
        let active = events::last_message_at(conn, chat.id, me.joined_seq, as_of)?
            .unwrap_or(chat.created_at);
        ordered.push((active, chat, me));
    }
    ordered.sort_by(|(a_at, a, _), (b_at, b, _)| b_at.cmp(a_at).then(b.id.cmp(&a.id)));
    let start = cursor.map_or(0, |c| {
        ordered.partition_point(|(at, chat, _)| (*at, chat.id) >= (c.active, c.chat_id))
    });
    let mut chats = Vec::new();
    let mut bytes = 0usize;
    let mut next = None;
    let mut last = None;
    for (active, chat, me) in ordered.iter().skip(start) {
        if chats.len() >= limit as usize {
            next = last;
            break;
        }
        let summary = summary_of(conn, chat, me)?;
        // The comma between two rows counts too.
        let size = crate::json_len(&summary) + 1;
        if !chats.is_empty() && bytes + size > max_bytes {
            next = last;
            break;
        }
        bytes += size;
        chats.push(summary);
        last = Some(ListCursor {
            as_of,
            active: *active,
            chat_id: chat.id,
        });
    }
    Ok(ListPage { chats, next })
}

// --- changes, for the writer's transaction only ---

pub(crate) fn insert_chat(
    conn: &Connection,
    kind: ChatKind,
    title: Option<&str>,
    created_at: Timestamp,
) -> Result<ChatId, StorageError> {
    conn.prepare_cached("INSERT INTO chats (kind, title, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![kind_name(kind), title, created_at])?;
    Ok(ChatId(conn.last_insert_rowid()))
}

pub(crate) fn insert_direct_pair(
    conn: &Connection,
    a: UserId,
    b: UserId,
    chat_id: ChatId,
) -> Result<(), StorageError> {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    conn.prepare_cached(
        "INSERT INTO direct_chats (user_low, user_high, chat_id) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![low.0, high.0, chat_id.0])?;
    Ok(())
}

pub(crate) fn set_title(
    conn: &Connection,
    chat_id: ChatId,
    title: &str,
) -> Result<(), StorageError> {
    conn.prepare_cached("UPDATE chats SET title = ?2 WHERE id = ?1")?
        .execute(params![chat_id.0, title])?;
    Ok(())
}

/// Adds a member who sees the log from `joined_seq` on and has read (and
/// received) up to it.
pub(crate) fn insert_member(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
    role: Role,
    joined_at: Timestamp,
    joined_seq: Seq,
) -> Result<(), StorageError> {
    conn.prepare_cached(
        "INSERT INTO chat_members \
         (chat_id, user_id, role, joined_at, joined_seq, read_seq, delivered_seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5)",
    )?
    .execute(params![
        chat_id.0,
        user.0,
        role_name(role),
        joined_at,
        joined_seq
    ])?;
    Ok(())
}

pub(crate) fn delete_member(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
) -> Result<bool, StorageError> {
    Ok(conn
        .prepare_cached("DELETE FROM chat_members WHERE chat_id = ?1 AND user_id = ?2")?
        .execute(params![chat_id.0, user.0])?
        == 1)
}

pub(crate) fn set_role(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
    role: Role,
) -> Result<bool, StorageError> {
    Ok(conn
        .prepare_cached("UPDATE chat_members SET role = ?3 WHERE chat_id = ?1 AND user_id = ?2")?
        .execute(params![chat_id.0, user.0, role_name(role)])?
        == 1)
}

/// The furthest read and delivery positions of the members other than
/// `user`: how far the own messages of `user` got (0 when alone).
pub fn others_positions(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
) -> Result<(Seq, Seq), StorageError> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(MAX(read_seq), 0), COALESCE(MAX(delivered_seq), 0) \
             FROM chat_members WHERE chat_id = ?1 AND user_id <> ?2",
        )?
        .query_row(params![chat_id.0, user.0], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// Which position a receipt moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Seen by the member (implies delivered).
    Read,
    /// Received and stored by one of the member's devices.
    Delivered,
}

/// Moves a member's read or delivery position forwards to `seq` (never
/// backwards; reading also moves the delivery position). Returns the
/// position before and after (equal when it did not move).
pub(crate) fn advance(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
    receipt: Receipt,
    seq: Seq,
) -> Result<(Seq, Seq), StorageError> {
    let Some(before) = membership(conn, chat_id, user)? else {
        return Ok((Seq::ZERO, Seq::ZERO));
    };
    let (was, sql) = match receipt {
        Receipt::Read => (
            before.read_seq,
            "UPDATE chat_members SET read_seq = ?3, delivered_seq = MAX(delivered_seq, ?3) \
             WHERE chat_id = ?1 AND user_id = ?2 AND read_seq < ?3",
        ),
        Receipt::Delivered => (
            before.delivered_seq,
            "UPDATE chat_members SET delivered_seq = ?3 \
             WHERE chat_id = ?1 AND user_id = ?2 AND delivered_seq < ?3",
        ),
    };
    if seq <= was {
        return Ok((was, was));
    }
    conn.prepare_cached(sql)?
        .execute(params![chat_id.0, user.0, seq])?;
    Ok((was, seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_storage;
    use crate::writer::tests::{add_users, allow_all, change, group, message};
    use crate::writer::{Change, EventWriter, NewChat, WriteContext, WriterConfig};

    #[tokio::test]
    async fn chat_list_pages_in_a_fixed_order_within_count_and_byte_caps() {
        let (_dir, storage) = temp_storage();
        let writer =
            EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
        let u = add_users(&storage, 2);
        let mut chats = Vec::new();
        for n in 0..12 {
            let chat = group(&writer, u[0], &u).await;
            writer
                .append(
                    message(chat, u[n % 2], &format!("m{n}"), &u),
                    WriteContext::default(),
                )
                .await
                .unwrap();
            chats.push(chat);
        }
        let everything = storage.with_conn(|conn| list_for_user(conn, u[1])).unwrap();
        let ids = |list: &[ChatSummary]| list.iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(everything.len(), 12);
        let row = crate::json_len(&everything[0]);

        // Pages of at most 5 rows or about 3 rows of bytes, in the same order.
        let now = ferrogram_core::ids::Timestamp::now();
        for (limit, max_bytes) in [(5, usize::MAX), (100, 3 * row + 20), (100, 1)] {
            let mut got = Vec::new();
            let mut cursor = None;
            let mut pages = 0;
            loop {
                let page = storage
                    .with_conn(|conn| list_page(conn, u[1], cursor, now, limit, max_bytes))
                    .unwrap();
                assert!(!page.chats.is_empty());
                assert!(page.chats.len() <= limit as usize);
                let bytes: usize = page.chats.iter().map(|c| crate::json_len(c) + 1).sum();
                assert!(bytes <= max_bytes || page.chats.len() == 1, "{bytes}");
                got.extend(page.chats);
                pages += 1;
                if pages == 2 {
                    // Activity between pages does not move a chat: the
                    // oldest chat (the last page's) gets a message now.
                    let oldest = *ids(&everything).last().unwrap();
                    while ferrogram_core::ids::Timestamp::now() <= now {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    writer
                        .append(
                            message(oldest, u[0], &format!("late{limit}{max_bytes}"), &u),
                            WriteContext::default(),
                        )
                        .await
                        .unwrap();
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            assert_eq!(
                ids(&got),
                ids(&everything),
                "limit {limit}, bytes {max_bytes}"
            );
            assert!(pages >= 3, "{pages} pages");
        }
    }

    #[tokio::test]
    async fn get_list_and_summaries() {
        let (_dir, storage) = temp_storage();
        let writer =
            EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
        let u = add_users(&storage, 3);
        let team = group(&writer, u[0], &u).await;
        let direct = writer
            .create_chat(NewChat::Direct {
                creator: u[0],
                peer: u[1],
            })
            .await
            .unwrap()
            .chat_id;
        writer
            .append(message(team, u[1], "older", &u), WriteContext::default())
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        writer
            .append(
                message(direct, u[1], "newer", &u[..2]),
                WriteContext::default(),
            )
            .await
            .unwrap();

        let chat = storage.with_conn(|conn| chat(conn, team)).unwrap().unwrap();
        assert_eq!(chat.kind, ChatKind::Group);
        assert_eq!(chat.title.as_deref(), Some("team"));
        assert_eq!(chat.last_seq, Seq::new(2));
        let roles: Vec<_> = chat.members.iter().map(|m| (m.user.id, m.role)).collect();
        assert_eq!(
            roles,
            [
                (u[0], Role::Owner),
                (u[1], Role::Member),
                (u[2], Role::Member)
            ]
        );
        assert_eq!(chat.members[1].user.handle, "user1");

        let list = storage.with_conn(|conn| list_for_user(conn, u[0])).unwrap();
        let ids: Vec<_> = list.iter().map(|s| s.id).collect();
        assert_eq!(ids, [direct, team], "most recently active first");
        let dm = &list[0];
        assert_eq!(dm.kind, ChatKind::Direct);
        assert_eq!(dm.peer.as_ref().map(|p| p.id), Some(u[1]));
        assert_eq!(
            (dm.member_count, dm.unread_count, dm.my_read_seq),
            (2, 1, Seq::new(1))
        );
        assert_eq!(dm.last_message.as_ref().map(|m| m.seq), Some(Seq::new(2)));
        assert_eq!(list[1].my_role, Role::Owner);
        assert_eq!(list[1].peer, None);

        // u2 is not in the direct chat
        assert_eq!(
            storage
                .with_conn(|conn| list_for_user(conn, u[2]))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            storage
                .with_conn(|conn| summary(conn, direct, u[2]))
                .unwrap(),
            None
        );
        assert!(matches!(
            storage
                .with_conn(|conn| access(conn, direct, u[2]))
                .unwrap(),
            ChatAccess::NotAMember
        ));
        assert!(matches!(
            storage
                .with_conn(|conn| access(conn, ChatId(999), u[2]))
                .unwrap(),
            ChatAccess::NoSuchChat
        ));
        assert_eq!(
            storage
                .with_conn(|conn| direct_between(conn, u[1], u[0]))
                .unwrap(),
            Some(direct)
        );
        assert!(storage
            .with_conn(|conn| share_a_chat(conn, u[2], u[0]))
            .unwrap());
        assert_eq!(
            storage.with_conn(|conn| co_members(conn, u[2])).unwrap(),
            [u[0], u[1]]
        );
        assert_eq!(
            storage.with_conn(|conn| co_members(conn, u[0])).unwrap(),
            [u[1], u[2]]
        );
        assert_eq!(
            storage
                .with_conn(|conn| chat_ids_for_user(conn, u[1]))
                .unwrap(),
            [team, direct]
        );
        assert_eq!(
            storage
                .with_conn(|conn| my_read_seq(conn, team, u[1]))
                .unwrap(),
            Some(Seq::new(1))
        );
    }

    #[tokio::test]
    async fn a_later_member_starts_reading_where_they_joined() {
        let (_dir, storage) = temp_storage();
        let writer =
            EventWriter::start(&storage, WriterConfig::default(), allow_all(), None).unwrap();
        let u = add_users(&storage, 3);
        let chat = group(&writer, u[0], &u[..2]).await;
        writer
            .append(
                message(chat, u[1], "before", &u[..2]),
                WriteContext::default(),
            )
            .await
            .unwrap();
        writer
            .append(
                change(
                    chat,
                    u[0],
                    Change::AddMembers {
                        user_ids: vec![u[2]],
                        invitations: crate::invitations::InvitationLimits::default(),
                    },
                ),
                WriteContext::default(),
            )
            .await
            .unwrap();
        let me = storage
            .with_conn(|conn| membership(conn, chat, u[2]))
            .unwrap()
            .unwrap();
        assert_eq!((me.joined_seq, me.read_seq), (Seq::new(3), Seq::new(3)));
        let summary = storage
            .with_conn(|conn| summary(conn, chat, u[2]))
            .unwrap()
            .unwrap();
        assert_eq!((summary.unread_count, summary.last_message), (0, None));
        // removing deletes the membership: nothing left to read with
        writer
            .append(
                change(chat, u[0], Change::RemoveMember { user_id: u[2] }),
                WriteContext::default(),
            )
            .await
            .unwrap();
        assert!(storage
            .with_conn(|conn| membership(conn, chat, u[2]))
            .unwrap()
            .is_none());
        assert_eq!(
            storage.with_conn(|conn| member_ids(conn, chat)).unwrap(),
            &u[..2]
        );
    }
}
