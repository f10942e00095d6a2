//! The server's chat rules (`crate::rules::ChatPolicy`) run by the real
//! event writer inside its transaction, through the handlers' `EventStore`
//! trait object (`HandlerCtx::writer`), and the error codes their refusals
//! become.

use super::chat_support::{create_group, people, seal, Person};
use super::support::TestApp;
use crate::chat::write_error;
use ferrogram_core::ids::{ChatId, Seq, UserId};
use ferrogram_core::proto::{EventBody, Role};
use ferrogram_core::Refusal;
use ferrogram_storage::backend::{
    AppendRequest, Appended, Change, EventStore, NewChat, WriteContext, WriteError,
};
use ferrogram_storage::invitations::InvitationLimits;
use ferrogram_storage::{chats, events};

/// The app's writer as the handlers see it.
fn store(app: &TestApp) -> &dyn EventStore {
    &*app.ctx.writer
}

async fn run(
    app: &TestApp,
    chat: ChatId,
    sender: &Person,
    change: Change,
) -> Result<Appended, WriteError> {
    store(app)
        .append(
            AppendRequest {
                chat_id: chat,
                sender: sender.id,
                change,
            },
            WriteContext::default(),
        )
        .await
}

fn refused(refusal: Refusal) -> Result<Appended, WriteError> {
    Err(WriteError::Refused(refusal))
}

fn add(users: &[&Person]) -> Change {
    Change::AddMembers {
        user_ids: users.iter().map(|p| p.id).collect(),
        invitations: InvitationLimits::default(),
    }
}

fn message(chat: ChatId, sender: &Person, id: &str, members: &[&Person]) -> Change {
    Change::Message {
        client_msg_id: id.to_owned(),
        envelope: seal(chat, sender, id, "hello", members),
    }
}

#[tokio::test]
async fn roles_decide_who_may_change_a_group() {
    let app = TestApp::new();
    let p = people(&app, &["owner", "admin", "admin2", "member", "outsider"]).await;
    let (owner, admin, admin2, member, outsider) = (&p[0], &p[1], &p[2], &p[3], &p[4]);
    let chat = create_group(&app, owner, &[admin, admin2, member]).await.id;
    let set_role = |user: &Person, role| Change::SetRole {
        user_id: user.id,
        role,
    };
    let remove = |user: &Person| Change::RemoveMember { user_id: user.id };
    run(&app, chat, owner, set_role(admin, Role::Admin))
        .await
        .unwrap();
    run(&app, chat, owner, set_role(admin2, Role::Admin))
        .await
        .unwrap();

    // members neither add, remove nor rename
    assert_eq!(
        run(&app, chat, member, add(&[outsider])).await,
        refused(Refusal::RoleRequired(Role::Admin))
    );
    assert_eq!(
        run(&app, chat, member, Change::Rename { title: "t".into() }).await,
        refused(Refusal::RoleRequired(Role::Admin))
    );
    assert_eq!(
        run(&app, chat, member, remove(outsider)).await,
        refused(Refusal::RoleRequired(Role::Admin)),
        "the role is judged before whether the target is a member"
    );
    // admins do not set roles, and do not remove admins or the owner
    assert_eq!(
        run(&app, chat, admin, set_role(member, Role::Admin)).await,
        refused(Refusal::RoleRequired(Role::Owner))
    );
    assert_eq!(
        run(&app, chat, admin, remove(admin2)).await,
        refused(Refusal::Outranked)
    );
    assert_eq!(
        run(&app, chat, admin, remove(owner)).await,
        refused(Refusal::Outranked)
    );
    assert_eq!(
        run(&app, chat, owner, set_role(member, Role::Owner)).await,
        refused(Refusal::InvalidRole)
    );
    assert_eq!(
        run(&app, chat, owner, Change::Leave).await,
        refused(Refusal::OwnerMustTransfer)
    );
    assert_eq!(
        run(&app, chat, owner, remove(owner)).await,
        refused(Refusal::CannotTargetSelf)
    );
    assert_eq!(
        run(
            &app,
            chat,
            owner,
            Change::TransferOwnership { user_id: owner.id }
        )
        .await,
        refused(Refusal::CannotTargetSelf)
    );
    assert_eq!(
        run(&app, chat, owner, remove(outsider)).await,
        Err(WriteError::NotMember(outsider.id))
    );
    // admins add and rename
    let added = run(&app, chat, admin, add(&[outsider])).await.unwrap();
    assert_eq!(added.added, [outsider.id]);
    run(
        &app,
        chat,
        admin,
        Change::Rename {
            title: "renamed".into(),
        },
    )
    .await
    .unwrap();
    // the owner removes an admin, an admin removes a member
    run(&app, chat, owner, remove(admin2)).await.unwrap();
    run(&app, chat, admin, remove(outsider)).await.unwrap();
    // transfer: two events, roles swapped
    let transfer = run(
        &app,
        chat,
        owner,
        Change::TransferOwnership { user_id: member.id },
    )
    .await
    .unwrap();
    let bodies: Vec<_> = transfer.events.iter().map(|e| e.body.clone()).collect();
    assert_eq!(
        bodies,
        [
            EventBody::RoleChanged {
                user_id: member.id,
                role: Role::Owner
            },
            EventBody::RoleChanged {
                user_id: owner.id,
                role: Role::Admin
            },
        ]
    );
    // the former owner may leave now
    let left = run(&app, chat, owner, Change::Leave).await.unwrap();
    assert_eq!(left.removed, [owner.id]);
    let role_of = |user: UserId| {
        app.ctx
            .storage
            .with_conn(|conn| chats::membership(conn, chat, user))
            .unwrap()
            .map(|m| m.role)
    };
    assert_eq!(role_of(member.id), Some(Role::Owner));
    assert_eq!(role_of(owner.id), None);
}

#[tokio::test]
async fn a_lone_owner_may_leave_and_groups_have_a_size_limit() {
    let app = TestApp::with_settings(|s| s.max_group_members = 2);
    let p = people(&app, &["alice", "bob", "carol"]).await;
    let group = |members: Vec<UserId>| NewChat::Group {
        creator: p[0].id,
        title: "t".into(),
        members,
        invitations: InvitationLimits::default(),
    };
    assert_eq!(
        store(&app)
            .create_chat(group(vec![p[1].id, p[2].id, p[0].id, p[1].id]))
            .await,
        Err(WriteError::Refused(Refusal::TooManyMembers { max: 2 }))
    );
    // duplicates and the creator count once
    let created = store(&app)
        .create_chat(group(vec![p[1].id, p[0].id, p[1].id]))
        .await
        .unwrap();
    assert_eq!(created.members, [p[0].id, p[1].id]);
    let chat = created.chat_id;
    assert_eq!(
        run(&app, chat, &p[0], add(&[&p[2]])).await,
        refused(Refusal::TooManyMembers { max: 2 })
    );
    run(&app, chat, &p[1], Change::Leave).await.unwrap();
    let done = run(&app, chat, &p[0], Change::Leave).await.unwrap();
    assert!(done.members.is_empty());
}

#[tokio::test]
async fn direct_chats_have_no_member_changes_and_no_self() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol"]).await;
    assert_eq!(
        store(&app)
            .create_chat(NewChat::Direct {
                creator: p[0].id,
                peer: p[0].id
            })
            .await,
        Err(WriteError::Refused(Refusal::CannotTargetSelf))
    );
    let chat = store(&app)
        .create_chat(NewChat::Direct {
            creator: p[0].id,
            peer: p[1].id,
        })
        .await
        .unwrap()
        .chat_id;
    for change in [
        add(&[&p[2]]),
        Change::RemoveMember { user_id: p[1].id },
        Change::Leave,
        Change::Rename { title: "x".into() },
        Change::SetRole {
            user_id: p[1].id,
            role: Role::Admin,
        },
        Change::TransferOwnership { user_id: p[1].id },
    ] {
        let what = format!("{change:?}");
        assert_eq!(
            run(&app, chat, &p[0], change).await,
            refused(Refusal::DirectChat),
            "{what}"
        );
    }
}

#[tokio::test]
async fn only_the_author_edits_or_deletes_a_message() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob"]).await;
    let both = [&p[0], &p[1]];
    let chat = create_group(&app, &p[0], &[&p[1]]).await.id;
    let seq = run(&app, chat, &p[0], message(chat, &p[0], "m", &both))
        .await
        .unwrap()
        .event()
        .seq;
    let edit = Change::Edit {
        target_seq: seq,
        envelope: seal(chat, &p[1], "e0", "mine now", &both),
    };
    assert_eq!(
        run(&app, chat, &p[1], edit).await,
        refused(Refusal::NotMessageAuthor)
    );
    assert_eq!(
        run(&app, chat, &p[1], Change::Delete { target_seq: seq }).await,
        refused(Refusal::NotMessageAuthor)
    );
    run(&app, chat, &p[0], Change::Delete { target_seq: seq })
        .await
        .unwrap();
}

#[tokio::test]
async fn sends_past_the_storage_quota_are_refused() {
    let p0 = {
        // The envelopes' stored sizes, to set the quota to three of them.
        let app = TestApp::new();
        people(&app, &["alice", "bob"]).await
    };
    let chat_guess = ChatId(1);
    let sizes: Vec<u64> = (0..3)
        .map(|n| {
            seal(
                chat_guess,
                &p0[0],
                &format!("m{n}"),
                "hello",
                &[&p0[0], &p0[1]],
            )
            .to_stored()
            .unwrap()
            .len() as u64
        })
        .collect();
    let quota: u64 = sizes.iter().sum();
    let app = TestApp::with_settings(|s| s.account_storage_bytes = quota);
    let p = people(&app, &["alice", "bob"]).await;
    let both = [&p[0], &p[1]];
    let chat = create_group(&app, &p[0], &[&p[1]]).await.id;
    assert_eq!(chat, chat_guess);
    let mut seqs = Vec::new();
    for n in 0..3 {
        let sent = run(
            &app,
            chat,
            &p[0],
            message(chat, &p[0], &format!("m{n}"), &both),
        )
        .await
        .unwrap();
        seqs.push(sent.event().seq);
    }
    assert_eq!(
        run(&app, chat, &p[0], message(chat, &p[0], "m3", &both)).await,
        refused(Refusal::QuotaExceeded { quota })
    );
    // Edits count too.
    let edit = Change::Edit {
        target_seq: seqs[0],
        envelope: seal(chat, &p[0], "e0", "hello", &both),
    };
    assert_eq!(
        run(&app, chat, &p[0], edit).await,
        refused(Refusal::QuotaExceeded { quota })
    );
    // A retry of a stored message is still answered.
    let again = run(&app, chat, &p[0], message(chat, &p[0], "m0", &both))
        .await
        .unwrap();
    assert!(again.duplicate);
    // Another account has its own quota; nothing of the refused was stored.
    let other = run(&app, chat, &p[1], message(chat, &p[1], "m0", &both))
        .await
        .unwrap();
    assert_eq!(other.event().seq, seqs[2].next());
    let stored = app
        .ctx
        .storage
        .with_conn(|conn| events::events_after(conn, chat, Seq::ZERO, 100))
        .unwrap();
    assert_eq!(stored.len(), 5, "created, three messages, the other's one");
}

#[tokio::test]
async fn a_deleted_owner_hands_the_group_to_the_longest_standing_admin() {
    let app = TestApp::new();
    let p = people(&app, &["alice", "bob", "carol", "dave"]).await;
    let chat = create_group(&app, &p[0], &[&p[1], &p[2], &p[3]]).await.id;
    run(
        &app,
        chat,
        &p[0],
        Change::SetRole {
            user_id: p[3].id,
            role: Role::Admin,
        },
    )
    .await
    .unwrap();
    let departures = store(&app).delete_account(p[0].id).await.unwrap();
    assert_eq!(departures.len(), 1);
    let bodies: Vec<_> = departures[0]
        .events
        .iter()
        .map(|e| e.body.clone())
        .collect();
    // the admin outranks the longer-standing members
    assert_eq!(
        bodies,
        [
            EventBody::MemberLeft { user_id: p[0].id },
            EventBody::RoleChanged {
                user_id: p[3].id,
                role: Role::Owner
            }
        ]
    );
}

/// The codes clients see for every write error, refusals included: the
/// same as before the rules left storage.
#[test]
fn write_errors_keep_their_codes() {
    let code = |e: WriteError| write_error(&e).code.as_str();
    let user = UserId(9);
    for (error, expected) in [
        (WriteError::ChatNotFound, "chat_not_found"),
        (WriteError::NotAMember, "not_a_member"),
        (WriteError::UserNotFound(user), "user_not_found"),
        (WriteError::NotMember(user), "invalid_members"),
        (WriteError::AlreadyMember(user), "invalid_members"),
        (WriteError::MembersChanged, "invalid_envelope"),
        (WriteError::MessageNotFound, "message_not_found"),
        (WriteError::ClientMsgIdReused, "invalid_client_msg_id"),
        (WriteError::NoInvitation, "invitation_not_found"),
        (WriteError::Failed, "unavailable"),
        (WriteError::Closed, "unavailable"),
        (Refusal::CannotTargetSelf.into(), "invalid_members"),
        (Refusal::DirectChat.into(), "not_a_group"),
        (Refusal::RoleRequired(Role::Admin).into(), "not_chat_admin"),
        (Refusal::Outranked.into(), "not_chat_admin"),
        (Refusal::OwnerMustTransfer.into(), "owner_must_transfer"),
        (Refusal::InvalidRole.into(), "bad_request"),
        (
            Refusal::TooManyMembers { max: 3 }.into(),
            "too_many_members",
        ),
        (Refusal::NotMessageAuthor.into(), "not_message_author"),
        (Refusal::QuotaExceeded { quota: 1 }.into(), "quota_exceeded"),
    ] {
        let what = format!("{error:?}");
        assert_eq!(code(error), expected, "{what}");
    }
    // A refusal's message is its own.
    assert_eq!(
        write_error(&Refusal::OwnerMustTransfer.into()).message,
        "the owner must transfer ownership before leaving"
    );
}
