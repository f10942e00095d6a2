//! Each request applied inside the batch transaction.

use super::rules;
use super::thread::Abort;
use super::{AppendRequest, Appended, Change, Created, NewChat, PositionMark, WriteError};
use crate::chats::{self, ChatAccess, Membership, Receipt};
use crate::invitations;
use crate::{events, users, StorageError};
use ferrogram_core::ids::{ChatId, Seq, Timestamp, UserId};
use ferrogram_core::proto::{ChatEvent, ChatKind, Envelope, EventBody, Role};
use rusqlite::Connection;

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

/// Counts `bytes` more of stored messages for `user`, or refuses them when
/// they would take the account past `quota` (0: no limit). Reads before it
/// writes, so a refusal leaves nothing to undo.
fn charge_storage(conn: &Connection, user: UserId, bytes: usize, quota: u64) -> Result<(), Abort> {
    use rusqlite::OptionalExtension;
    let bytes = bytes as i64;
    if quota > 0 {
        let stored: i64 = conn
            .prepare_cached("SELECT stored_bytes FROM account_storage WHERE user_id = ?1")?
            .query_row([user.0], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        rules::within_quota(stored, bytes, quota)?;
    }
    conn.prepare_cached(
        "INSERT INTO account_storage (user_id, stored_bytes) VALUES (?1, ?2) \
         ON CONFLICT (user_id) DO UPDATE SET stored_bytes = stored_bytes + excluded.stored_bytes",
    )?
    .execute(rusqlite::params![user.0, bytes])?;
    Ok(())
}

pub(super) fn apply_change(
    conn: &Connection,
    request: AppendRequest,
    at: Timestamp,
    quota: u64,
) -> Result<Appended, Abort> {
    let AppendRequest {
        chat_id,
        sender,
        change,
    } = request;
    if let Change::AcceptInvitation { max_members } = change {
        return accept_invitation(conn, chat_id, sender, max_members, at);
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
            charge_storage(conn, sender, body.stored_len(), quota)?;
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
            rules::may_alter_message(sender, target.sender)?;
            if events::deletion_of(conn, chat_id, target_seq)?.is_some() {
                return Err(WriteError::MessageNotFound.into());
            }
            check_wraps(&envelope, &members)?;
            let body = events::prepare(EventBody::Edit {
                target_seq,
                envelope,
            })?;
            charge_storage(conn, sender, body.stored_len(), quota)?;
            let event = events::append_prepared(conn, chat_id, sender, at, body)?;
            Ok(stored(vec![event], members))
        }
        Change::Delete { target_seq } => {
            let members = chats::member_ids(conn, chat_id)?;
            let target = visible_message(conn, chat_id, &me, target_seq)?;
            rules::may_alter_message(sender, target.sender)?;
            // Deleting again (a retry) answers with the first deletion.
            if let Some(deletion) = events::deletion_of(conn, chat_id, target_seq)? {
                return Ok(duplicate(deletion, members));
            }
            let event = append(EventBody::Delete { target_seq })?;
            Ok(stored(vec![event], members))
        }
        Change::AddMembers {
            user_ids,
            max_members,
            invitations,
        } => {
            rules::require_group(&chat)?;
            rules::require_role(&me, Role::Admin)?;
            let before = chats::member_ids(conn, chat_id)?;
            let mut named = user_ids;
            named.sort_unstable();
            named.dedup();
            if let Some(member) = named.iter().find(|u| before.binary_search(u).is_ok()) {
                return Err(WriteError::AlreadyMember(*member).into());
            }
            // Counts every named id, invitees and unknown ids alike, so the
            // refusal does not tell them apart.
            rules::fits(before.len() + named.len(), max_members)?;
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
        Change::AcceptInvitation { .. } => Err(WriteError::AlreadyMember(sender).into()),
        Change::RemoveMember { user_id } => {
            rules::require_group(&chat)?;
            rules::require_role(&me, Role::Admin)?;
            rules::not_self(sender, user_id)?;
            let target =
                chats::membership(conn, chat_id, user_id)?.ok_or(WriteError::NotMember(user_id))?;
            rules::may_remove(&me, &target)?;
            let event = append(EventBody::MemberRemoved { user_id })?;
            chats::delete_member(conn, chat_id, user_id)?;
            Ok(Appended {
                removed: vec![user_id],
                ..stored(vec![event], chats::member_ids(conn, chat_id)?)
            })
        }
        Change::Leave => {
            rules::require_group(&chat)?;
            rules::may_leave(&me, || chats::member_count(conn, chat_id))??;
            let event = append(EventBody::MemberLeft { user_id: sender })?;
            chats::delete_member(conn, chat_id, sender)?;
            Ok(Appended {
                removed: vec![sender],
                ..stored(vec![event], chats::member_ids(conn, chat_id)?)
            })
        }
        Change::Rename { title } => {
            rules::require_group(&chat)?;
            rules::require_role(&me, Role::Admin)?;
            chats::set_title(conn, chat_id, &title)?;
            let event = append(EventBody::Renamed { title })?;
            Ok(stored(vec![event], chats::member_ids(conn, chat_id)?))
        }
        Change::SetRole { user_id, role } => {
            rules::require_group(&chat)?;
            rules::require_role(&me, Role::Owner)?;
            rules::assignable(role)?;
            rules::not_self(sender, user_id)?;
            if chats::membership(conn, chat_id, user_id)?.is_none() {
                return Err(WriteError::NotMember(user_id).into());
            }
            chats::set_role(conn, chat_id, user_id, role)?;
            let event = append(EventBody::RoleChanged { user_id, role })?;
            Ok(stored(vec![event], chats::member_ids(conn, chat_id)?))
        }
        Change::TransferOwnership { user_id } => {
            rules::require_group(&chat)?;
            rules::require_role(&me, Role::Owner)?;
            rules::not_self(sender, user_id)?;
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
            if me.role == Role::Owner {
                if let Some(successor) = rules::successor(&remaining) {
                    chats::set_role(conn, chat_id, successor.user_id, Role::Owner)?;
                    events.push(append(EventBody::RoleChanged {
                        user_id: successor.user_id,
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
    chat_id: ChatId,
    sender: UserId,
    max_members: usize,
    at: Timestamp,
) -> Result<Appended, Abort> {
    if !invitations::remove(conn, chat_id, sender, at)? {
        return Err(WriteError::NoInvitation.into());
    }
    let chat = chats::by_id(conn, chat_id)?.ok_or(WriteError::NoInvitation)?;
    rules::require_group(&chat)?;
    let before = chats::member_ids(conn, chat_id)?;
    if before.binary_search(&sender).is_ok() {
        return Err(WriteError::AlreadyMember(sender).into());
    }
    rules::fits(before.len() + 1, max_members)?;
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
    user: UserId,
    at: Timestamp,
) -> Result<Vec<Appended>, Abort> {
    let mut departures = Vec::new();
    for chat_id in chats::chat_ids_for_user(conn, user)? {
        departures.push(apply_change(
            conn,
            AppendRequest {
                chat_id,
                sender: user,
                change: Change::AccountDeleted,
            },
            at,
            // A departure stores no message body: no quota to check.
            0,
        )?);
    }
    if !users::delete(conn, user)? {
        return Err(WriteError::UserNotFound(user).into());
    }
    Ok(departures)
}

pub(super) fn create_chat(
    conn: &Connection,
    chat: NewChat,
    at: Timestamp,
) -> Result<Created, Abort> {
    match chat {
        NewChat::Direct { creator, peer } => {
            rules::not_self(creator, peer)?;
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
            max_members,
            invitations,
        } => {
            let named = union(&[creator], &members);
            // Counts every named id (see `Change::AddMembers`).
            rules::fits(named.len(), max_members)?;
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
