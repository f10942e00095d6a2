//! Each request applied inside the batch transaction: the rows it reads
//! and writes, the data checks (no such chat or message, not a member, a
//! reused `client_msg_id`, wraps that no longer name the members), and the
//! points where it asks the chat rules ([`ChatRules`]) with the facts it has
//! read in the same transaction.

use super::{AppendRequest, Appended, Change, Created, NewChat, PositionMark, WriteError};
use crate::chats::{self, ChatAccess, Membership, Receipt};
use crate::invitations;
use crate::rules::{ChatRules, StorageUse};
use crate::{events, users, StorageError};
use ferrogram_core::ids::{ChatId, Seq, Timestamp, UserId};
use ferrogram_core::proto::{ChatEvent, ChatKind, Envelope, EventBody, Role};
use ferrogram_core::Refusal;
use rusqlite::Connection;

/// Why a request stopped inside the transaction: it is refused (its
/// savepoint is undone, the batch goes on) or the storage failed (the whole
/// batch is rolled back). Named for what happens to the request; the
/// handlers' `error::Fail` is a different thing.
pub(super) enum Abort {
    Refused(WriteError),
    Storage(StorageError),
}

impl From<WriteError> for Abort {
    fn from(e: WriteError) -> Self {
        Abort::Refused(e)
    }
}

impl From<Refusal> for Abort {
    fn from(refusal: Refusal) -> Self {
        Abort::Refused(WriteError::Refused(refusal))
    }
}

impl From<StorageError> for Abort {
    fn from(e: StorageError) -> Self {
        Abort::Storage(e)
    }
}

impl From<rusqlite::Error> for Abort {
    fn from(e: rusqlite::Error) -> Self {
        Abort::Storage(e.into())
    }
}

pub(super) fn union(a: &[UserId], b: &[UserId]) -> Vec<UserId> {
    let mut all: Vec<UserId> = a.iter().chain(b).copied().collect();
    all.sort_unstable();
    all.dedup();
    all
}

fn member_of(
    conn: &Connection,
    chat_id: ChatId,
    user: UserId,
) -> Result<(chats::ChatRecord, Membership), Abort> {
    match chats::access(conn, chat_id, user)? {
        ChatAccess::NoSuchChat => Err(WriteError::ChatNotFound.into()),
        ChatAccess::NotAMember => Err(WriteError::NotAMember.into()),
        ChatAccess::Member(chat, me) => Ok((chat, me)),
    }
}

/// The envelope must be sealed for exactly the current members (both lists
/// sorted by user id).
fn check_wraps(envelope: &Envelope, members: &[UserId]) -> Result<(), WriteError> {
    let wrapped = envelope.wraps.iter().map(|wrap| wrap.user_id);
    if wrapped.eq(members.iter().copied()) {
        Ok(())
    } else {
        Err(WriteError::MembersChanged)
    }
}

/// The message at `seq` as `me` may see it: a message event, not deleted,
/// not older than their membership.
fn visible_message(
    conn: &Connection,
    chat_id: ChatId,
    me: &Membership,
    seq: Seq,
) -> Result<ChatEvent, Abort> {
    match events::by_seq(conn, chat_id, seq)? {
        Some(
            event @ ChatEvent {
                body: EventBody::Message { .. },
                ..
            },
        ) if seq >= me.joined_seq => Ok(event),
        _ => Err(WriteError::MessageNotFound.into()),
    }
}

fn ids(members: &[Membership]) -> Vec<UserId> {
    members.iter().map(|m| m.user_id).collect()
}

fn stored(events: Vec<ChatEvent>, members: Vec<UserId>) -> Appended {
    Appended {
        events,
        duplicate: false,
        members,
        added: Vec::new(),
        removed: Vec::new(),
        invited: Vec::new(),
    }
}

fn duplicate(event: ChatEvent, members: Vec<UserId>) -> Appended {
    Appended {
        duplicate: true,
        ..stored(vec![event], members)
    }
}

/// Counts `bytes` more of stored messages for `user` (whatever the rules
/// say of quotas), then asks the rules with the account's use before them.
/// One statement when allowed; a refusal takes the bytes off again, so it
/// leaves nothing behind but, for an account's very first message, a row
/// of 0 bytes (a new message needs no savepoint for it).
fn charge_storage(
    conn: &Connection,
    rules: &dyn ChatRules,
    user: UserId,
    bytes: usize,
) -> Result<(), Abort> {
    let adding = bytes as i64;
    let total: i64 = conn
        .prepare_cached(
            "INSERT INTO account_storage (user_id, stored_bytes) VALUES (?1, ?2) \
             ON CONFLICT (user_id) DO UPDATE SET stored_bytes = stored_bytes + excluded.stored_bytes \
             RETURNING stored_bytes",
        )?
        .query_row(rusqlite::params![user.0, adding], |r| r.get(0))?;
    let usage = StorageUse {
        stored: total.saturating_sub(adding).max(0) as u64,
        adding: bytes as u64,
    };
    if let Err(refusal) = rules.may_store(user, usage) {
        conn.prepare_cached(
            "UPDATE account_storage SET stored_bytes = stored_bytes - ?2 WHERE user_id = ?1",
        )?
        .execute(rusqlite::params![user.0, adding])?;
        return Err(refusal.into());
    }
    Ok(())
}

pub(super) fn apply_change(
    conn: &Connection,
    rules: &dyn ChatRules,
    request: AppendRequest,
    at: Timestamp,
) -> Result<Appended, Abort> {
    let AppendRequest {
        chat_id,
        sender,
        change,
    } = request;
    if let Change::AcceptInvitation = change {
        return accept_invitation(conn, rules, chat_id, sender, at);
    }
    let (chat, me) = member_of(conn, chat_id, sender)?;
    let append = |body: EventBody| events::append(conn, chat_id, sender, at, body);
    match change {
        Change::Message {
            client_msg_id,
            envelope,
        } => {
            let members = chats::member_ids(conn, chat_id)?;
            if let Some(existing) = events::by_client_msg_id(conn, chat_id, sender, &client_msg_id)?
            {
                return match existing.body {
                    EventBody::Message { .. } => Ok(duplicate(existing, members)),
                    _ => Err(WriteError::ClientMsgIdReused.into()),
                };
            }
            check_wraps(&envelope, &members)?;
            let body = events::prepare(EventBody::Message {
                client_msg_id,
                envelope,
            })?;
            charge_storage(conn, rules, sender, body.stored_len())?;
            let event = events::append_prepared(conn, chat_id, sender, at, body)?;
            Ok(stored(vec![event], members))
        }
        Change::Edit {
            target_seq,
            envelope,
        } => {
            let members = chats::member_ids(conn, chat_id)?;
            let id = &envelope.header.client_msg_id;
            if let Some(existing) = events::by_client_msg_id(conn, chat_id, sender, id)? {
                return match existing.body {
                    EventBody::Edit { target_seq: t, .. } if t == target_seq => {
                        Ok(duplicate(existing, members))
                    }
                    _ => Err(WriteError::ClientMsgIdReused.into()),
                };
            }
            let target = visible_message(conn, chat_id, &me, target_seq)?;
            rules.may_alter_message(&me, target.sender)?;
            if events::deletion_of(conn, chat_id, target_seq)?.is_some() {
                return Err(WriteError::MessageNotFound.into());
            }
            check_wraps(&envelope, &members)?;
            let body = events::prepare(EventBody::Edit {
                target_seq,
                envelope,
            })?;
            charge_storage(conn, rules, sender, body.stored_len())?;
            let event = events::append_prepared(conn, chat_id, sender, at, body)?;
            Ok(stored(vec![event], members))
        }
        Change::Delete { target_seq } => {
            let members = chats::member_ids(conn, chat_id)?;
            let target = visible_message(conn, chat_id, &me, target_seq)?;
            rules.may_alter_message(&me, target.sender)?;
            // Deleting again (a retry) answers with the first deletion.
            if let Some(deletion) = events::deletion_of(conn, chat_id, target_seq)? {
                return Ok(duplicate(deletion, members));
            }
            let event = append(EventBody::Delete { target_seq })?;
            Ok(stored(vec![event], members))
        }
        Change::AddMembers {
            user_ids,
            invitations,
        } => {
            rules.may_add_members(&chat, &me)?;
            let before = chats::member_ids(conn, chat_id)?;
            let mut named = user_ids;
            named.sort_unstable();
            named.dedup();
            if let Some(member) = named.iter().find(|u| before.binary_search(u).is_ok()) {
                return Err(WriteError::AlreadyMember(*member).into());
            }
            // Counts every named id, invitees and unknown ids alike, so the
            // refusal does not tell them apart.
            rules.may_hold(before.len() + named.len())?;
            let (new, invited) = consent(conn, sender, &named)?;
            for user in &invited {
                invitations::invite(conn, chat_id, *user, sender, at, invitations)?;
            }
            let mut events = Vec::new();
            if !new.is_empty() {
                let event = append(EventBody::MembersAdded {
                    user_ids: new.clone(),
                })?;
                for user in &new {
                    chats::insert_member(conn, chat_id, *user, Role::Member, at, event.seq)?;
                }
                invitations::remove_for(conn, chat_id, &new)?;
                events.push(event);
            }
            Ok(Appended {
                members: union(&before, &new),
                added: new,
                invited,
                ..stored(events, Vec::new())
            })
        }
        Change::AcceptInvitation => Err(WriteError::AlreadyMember(sender).into()),
        Change::RemoveMember { user_id } => {
            let target = chats::membership(conn, chat_id, user_id)?;
            rules.may_remove_member(&chat, &me, user_id, target.as_ref())?;
            if target.is_none() {
                return Err(WriteError::NotMember(user_id).into());
            }
            let event = append(EventBody::MemberRemoved { user_id })?;
            chats::delete_member(conn, chat_id, user_id)?;
            Ok(Appended {
                removed: vec![user_id],
                ..stored(vec![event], chats::member_ids(conn, chat_id)?)
            })
        }
        Change::Leave => {
            rules.may_leave(&chat, &me, chats::member_count(conn, chat_id)?)?;
            let event = append(EventBody::MemberLeft { user_id: sender })?;
            chats::delete_member(conn, chat_id, sender)?;
            Ok(Appended {
                removed: vec![sender],
                ..stored(vec![event], chats::member_ids(conn, chat_id)?)
            })
        }
        Change::Rename { title } => {
            rules.may_rename(&chat, &me)?;
            chats::set_title(conn, chat_id, &title)?;
            let event = append(EventBody::Renamed { title })?;
            Ok(stored(vec![event], chats::member_ids(conn, chat_id)?))
        }
        Change::SetRole { user_id, role } => {
            rules.may_set_role(&chat, &me, user_id, role)?;
            if chats::membership(conn, chat_id, user_id)?.is_none() {
                return Err(WriteError::NotMember(user_id).into());
            }
            chats::set_role(conn, chat_id, user_id, role)?;
            let event = append(EventBody::RoleChanged { user_id, role })?;
            Ok(stored(vec![event], chats::member_ids(conn, chat_id)?))
        }
        Change::TransferOwnership { user_id } => {
            rules.may_transfer_ownership(&chat, &me, user_id)?;
            if chats::membership(conn, chat_id, user_id)?.is_none() {
                return Err(WriteError::NotMember(user_id).into());
            }
            chats::set_role(conn, chat_id, user_id, Role::Owner)?;
            chats::set_role(conn, chat_id, sender, Role::Admin)?;
            let promoted = append(EventBody::RoleChanged {
                user_id,
                role: Role::Owner,
            })?;
            let demoted = append(EventBody::RoleChanged {
                user_id: sender,
                role: Role::Admin,
            })?;
            Ok(stored(
                vec![promoted, demoted],
                chats::member_ids(conn, chat_id)?,
            ))
        }
        Change::AccountDeleted => {
            let left = append(EventBody::MemberLeft { user_id: sender })?;
            chats::delete_member(conn, chat_id, sender)?;
            let remaining = chats::memberships(conn, chat_id)?;
            let mut events = vec![left];
            // The group lost its owner: the rules name who inherits it.
            if me.role == Role::Owner && !remaining.is_empty() {
                if let Some(successor) = rules.successor(&remaining) {
                    chats::set_role(conn, chat_id, successor, Role::Owner)?;
                    events.push(append(EventBody::RoleChanged {
                        user_id: successor,
                        role: Role::Owner,
                    })?);
                }
            }
            Ok(Appended {
                removed: vec![sender],
                ..stored(events, ids(&remaining))
            })
        }
    }
}

/// Splits the users `adder` names (sorted, no duplicates) into those who
/// become members and those who are invited, by each one's privacy setting.
/// Ids without an account are in neither.
fn consent(
    conn: &Connection,
    adder: UserId,
    named: &[UserId],
) -> Result<(Vec<UserId>, Vec<UserId>), StorageError> {
    let mut members = Vec::new();
    let mut invited = Vec::new();
    for user in named {
        let Some(policy) = invitations::policy(conn, *user)? else {
            continue;
        };
        if *user == adder || invitations::may_add_directly(conn, adder, *user, policy)? {
            members.push(*user);
        } else {
            invited.push(*user);
        }
    }
    Ok((members, invited))
}

/// `sender` takes up their invitation: a member from now on.
fn accept_invitation(
    conn: &Connection,
    rules: &dyn ChatRules,
    chat_id: ChatId,
    sender: UserId,
    at: Timestamp,
) -> Result<Appended, Abort> {
    if !invitations::remove(conn, chat_id, sender, at)? {
        return Err(WriteError::NoInvitation.into());
    }
    let chat = chats::by_id(conn, chat_id)?.ok_or(WriteError::NoInvitation)?;
    rules.may_accept_invitation(&chat)?;
    let before = chats::member_ids(conn, chat_id)?;
    if before.binary_search(&sender).is_ok() {
        return Err(WriteError::AlreadyMember(sender).into());
    }
    rules.may_hold(before.len() + 1)?;
    let event = events::append(
        conn,
        chat_id,
        sender,
        at,
        EventBody::MembersAdded {
            user_ids: vec![sender],
        },
    )?;
    chats::insert_member(conn, chat_id, sender, Role::Member, at, event.seq)?;
    Ok(Appended {
        members: union(&before, &[sender]),
        added: vec![sender],
        ..stored(vec![event], Vec::new())
    })
}

/// [`EventWriter::delete_account`] inside the transaction.
pub(super) fn delete_account(
    conn: &Connection,
    rules: &dyn ChatRules,
    user: UserId,
    at: Timestamp,
) -> Result<Vec<Appended>, Abort> {
    let mut departures = Vec::new();
    for chat_id in chats::chat_ids_for_user(conn, user)? {
        departures.push(apply_change(
            conn,
            rules,
            AppendRequest {
                chat_id,
                sender: user,
                change: Change::AccountDeleted,
            },
            at,
        )?);
    }
    if !users::delete(conn, user)? {
        return Err(WriteError::UserNotFound(user).into());
    }
    Ok(departures)
}

pub(super) fn create_chat(
    conn: &Connection,
    rules: &dyn ChatRules,
    chat: NewChat,
    at: Timestamp,
) -> Result<Created, Abort> {
    match chat {
        NewChat::Direct { creator, peer } => {
            rules.may_create_direct(creator, peer)?;
            if let Some(unknown) = chats::unknown_users(conn, &[peer, creator])?.first() {
                return Err(WriteError::UserNotFound(*unknown).into());
            }
            if let Some(chat_id) = chats::direct_between(conn, creator, peer)? {
                return Ok(Created {
                    chat_id,
                    event: None,
                    members: chats::member_ids(conn, chat_id)?,
                    invited: Vec::new(),
                });
            }
            let members = union(&[creator], &[peer]);
            let chat_id = chats::insert_chat(conn, ChatKind::Direct, None, at)?;
            chats::insert_direct_pair(conn, creator, peer, chat_id)?;
            let event = events::append(
                conn,
                chat_id,
                creator,
                at,
                EventBody::Created {
                    title: None,
                    members: members.clone(),
                },
            )?;
            for user in &members {
                chats::insert_member(conn, chat_id, *user, Role::Member, at, event.seq)?;
            }
            Ok(Created {
                chat_id,
                event: Some(event),
                members,
                invited: Vec::new(),
            })
        }
        NewChat::Group {
            creator,
            title,
            members,
            invitations,
        } => {
            let named = union(&[creator], &members);
            // Counts every named id (see `Change::AddMembers`).
            rules.may_hold(named.len())?;
            // The creator's own account may have been deleted a moment ago.
            if !chats::unknown_users(conn, &[creator])?.is_empty() {
                return Err(WriteError::UserNotFound(creator).into());
            }
            let (members, invited) = consent(conn, creator, &named)?;
            let chat_id = chats::insert_chat(conn, ChatKind::Group, Some(&title), at)?;
            let event = events::append(
                conn,
                chat_id,
                creator,
                at,
                EventBody::Created {
                    title: Some(title),
                    members: members.clone(),
                },
            )?;
            for user in &members {
                let role = if *user == creator {
                    Role::Owner
                } else {
                    Role::Member
                };
                chats::insert_member(conn, chat_id, *user, role, at, event.seq)?;
            }
            for user in &invited {
                invitations::invite(conn, chat_id, *user, creator, at, invitations)?;
            }
            Ok(Created {
                chat_id,
                event: Some(event),
                members,
                invited,
            })
        }
    }
}

pub(super) fn mark(
    conn: &Connection,
    receipt: Receipt,
    chat_id: ChatId,
    user: UserId,
    seq: Seq,
) -> Result<PositionMark, Abort> {
    let (chat, _) = member_of(conn, chat_id, user)?;
    // Nobody reads or receives the future: cap at the last stored event.
    let (was, now) = chats::advance(conn, chat_id, user, receipt, seq.min(chat.last_seq))?;
    let notify = match (now > was, receipt) {
        (false, _) => Vec::new(),
        (true, Receipt::Read) => chats::member_ids(conn, chat_id)?,
        (true, Receipt::Delivered) => {
            let mut users = events::message_senders(conn, chat_id, was, now)?;
            users.retain(|u| *u != user);
            users.push(user);
            users.sort_unstable();
            users
        }
    };
    Ok(PositionMark {
        seq: now,
        moved: now > was,
        notify,
    })
}
