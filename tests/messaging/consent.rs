//! Consent to group membership: someone the invitee does not chat with
//! only invites them; an invitee is no member (no messages, no presence,
//! no profile updates either way) until they accept.

use ferrogram_client::proto::{Chat, GroupAddPolicy};
use ferrogram_client::{ChatChangeKind, ClientEvent, UserId};
use ferrogram_core::ErrorCode;

use ferrogram_test_support::{marker, person, spawn_app, spawn_app_with, Device};

/// A chat answer with its ids blanked: what is left is its shape.
fn shape(chat: &Chat) -> serde_json::Value {
    let mut value = serde_json::to_value(chat).unwrap();
    value["id"] = 0.into();
    value["created_at"] = 0.into();
    value["invited"] = serde_json::json!(["?"]);
    for member in value["members"].as_array_mut().unwrap() {
        member["joined_at"] = 0.into();
    }
    value
}

#[tokio::test]
async fn a_stranger_only_invites_and_sees_nothing_until_accepted() {
    let app = spawn_app().await;
    let mallory = person(&app, "csmallory", 0).await;
    let bob = person(&app, "csbob", 1).await;
    let carol = person(&app, "cscarol", 2).await;
    let mut m = Device::new(&app, &mallory).await;
    let mut b = Device::new(&app, &bob).await;
    let c = Device::new(&app, &carol).await;

    let chat = m.messenger.create_group("trap", &[bob.id]).await.unwrap();
    assert_eq!(chat.members.len(), 1, "only the creator is a member");
    assert_eq!(chat.invited, [bob.id]);
    let invitation = b
        .wait_for("invitation", |e| match e {
            ClientEvent::Invited(i) => Some(i),
            _ => None,
        })
        .await;
    assert_eq!(invitation.chat_id, chat.id);
    assert_eq!(invitation.inviter.as_ref().map(|u| u.id), Some(mallory.id));
    assert_eq!(invitation.member_count, 1);
    assert_eq!(b.messenger.invitations().await.unwrap(), [invitation]);

    // Not a member: no chat, no history, not in the wraps.
    let refused = b.messenger.get_chat(chat.id).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::NotAMember));
    assert!(b
        .messenger
        .list_chats()
        .await
        .unwrap()
        .iter()
        .all(|c| c.id != chat.id));
    let before = m.send(chat.id, &marker("before-accept")).await;

    // The stranger sees neither presence nor profile changes.
    assert!(m.messenger.presence(&[bob.id]).await.unwrap().is_empty());
    let update = ferrogram_client::proto::UpdateProfileRequest {
        bio: Some("private".into()),
        ..Default::default()
    };
    b.messenger.session().update_profile(update).await.unwrap();
    // Barrier: Carol's message reaches Mallory after anything Bob's change
    // could have sent her.
    let direct = c.messenger.create_direct(mallory.id).await.unwrap();
    let barrier = marker("barrier");
    c.send(direct.id, &barrier).await;
    let leaked = m
        .wait_for("the barrier message", |e| match e {
            ClientEvent::ProfileChanged(p) if p.id == bob.id => Some(Some(p)),
            ClientEvent::MessageReceived(msg) if msg.text() == Some(barrier.as_str()) => Some(None),
            _ => None,
        })
        .await;
    assert_eq!(leaked, None, "a stranger learned of a profile change");

    // Accepting makes Bob a member: the others see members_added.
    let joined = b.messenger.accept_invitation(chat.id).await.unwrap();
    assert_eq!(joined.members.len(), 2);
    b.wait_for("chat joined", |e| match e {
        ClientEvent::ChatJoined(s) if s.id == chat.id => Some(()),
        _ => None,
    })
    .await;
    let added = m
        .wait_for("members_added", |e| match e {
            ClientEvent::ChatChanged(change) if change.chat_id == chat.id => Some(change),
            _ => None,
        })
        .await;
    assert_eq!(
        added.change,
        ChatChangeKind::MembersAdded {
            user_ids: vec![bob.id]
        }
    );
    assert_eq!(added.sender, bob.id);
    assert!(b.messenger.invitations().await.unwrap().is_empty());
    let after = marker("after-accept");
    m.send(chat.id, &after).await;
    assert_eq!(b.message_from_others().await.text(), Some(after.as_str()));
    // Earlier messages were never sealed for him, nor are they shown.
    let page: ferrogram_client::proto::HistoryPage = b
        .messenger
        .call::<ferrogram_core::commands::GetHistory>(&ferrogram_client::proto::HistoryRequest {
            chat_id: chat.id,
            before_seq: None,
            after_seq: None,
            limit: None,
        })
        .await
        .unwrap();
    assert!(!page.events.is_empty());
    assert!(page.events.iter().all(|e| e.seq > before.seq));
    assert_eq!(m.messenger.presence(&[bob.id]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_declined_invitation_is_gone() {
    let app = spawn_app().await;
    let alice = person(&app, "dcalice", 0).await;
    let bob = person(&app, "dcbob", 1).await;
    let a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    let mut b2 = Device::new(&app, &bob).await;
    let chat = a.messenger.create_group("no", &[bob.id]).await.unwrap();
    assert_eq!(chat.invited, [bob.id]);
    b.wait_for("invitation", |e| match e {
        ClientEvent::Invited(i) => Some(i),
        _ => None,
    })
    .await;
    b.messenger.decline_invitation(chat.id).await.unwrap();
    b2.wait_for("invitation closed on the other device", |e| match e {
        ClientEvent::InvitationClosed { chat_id } if chat_id == chat.id => Some(()),
        _ => None,
    })
    .await;
    assert!(b.messenger.invitations().await.unwrap().is_empty());
    for refused in [
        b.messenger.accept_invitation(chat.id).await.unwrap_err(),
        b.messenger.decline_invitation(chat.id).await.unwrap_err(),
    ] {
        assert_eq!(refused.code(), Some(ErrorCode::InvitationNotFound));
    }
    let chat = a.messenger.get_chat(chat.id).await.unwrap();
    assert_eq!(chat.members.len(), 1);
}

#[tokio::test]
async fn the_privacy_setting_decides_who_adds_directly() {
    let app = spawn_app().await;
    let alice = person(&app, "pvalice", 0).await;
    let bob = person(&app, "pvbob", 1).await;
    let carol = person(&app, "pvcarol", 2).await;
    let a = Device::new(&app, &alice).await;
    let b = Device::new(&app, &bob).await;
    let c = Device::new(&app, &carol).await;
    let member_ids =
        |chat: &Chat| -> Vec<UserId> { chat.members.iter().map(|m| m.user.id).collect() };

    // Default, people I chat with: a direct chat Alice opened is not enough...
    let me = b.messenger.session().me().await.unwrap();
    assert_eq!(me.who_can_add_me, GroupAddPolicy::ChatPartners);
    let direct = a.messenger.create_direct(bob.id).await.unwrap();
    a.send(direct.id, "hello Bob").await;
    let group = a.messenger.create_group("g1", &[bob.id]).await.unwrap();
    assert_eq!(group.invited, [bob.id]);
    // ...once Bob wrote back, Alice adds him directly.
    b.send(direct.id, "hi Alice").await;
    let group = a.messenger.create_group("g2", &[bob.id]).await.unwrap();
    assert!(group.invited.is_empty());
    assert!(member_ids(&group).contains(&bob.id));
    // Sharing a group counts too: Bob now adds Alice (who keeps the default).
    let group = b.messenger.create_group("g3", &[alice.id]).await.unwrap();
    assert!(member_ids(&group).contains(&alice.id));

    // Nobody: even a chat partner only invites.
    let me = b
        .messenger
        .set_who_can_add_me(GroupAddPolicy::Nobody)
        .await
        .unwrap();
    assert_eq!(me.who_can_add_me, GroupAddPolicy::Nobody);
    let group = a.messenger.create_group("g4", &[bob.id]).await.unwrap();
    assert_eq!(group.invited, [bob.id]);
    let added = a.messenger.add_members(group.id, &[bob.id]).await.unwrap();
    assert_eq!(
        (added.members.len(), added.invited.clone()),
        (1, vec![bob.id])
    );

    // Everyone: a stranger adds Bob directly; Carol stays a stranger's invitee.
    b.messenger
        .set_who_can_add_me(GroupAddPolicy::Everyone)
        .await
        .unwrap();
    let group = c
        .messenger
        .create_group("g5", &[bob.id, alice.id])
        .await
        .unwrap();
    assert_eq!(member_ids(&group), {
        let mut ids = vec![bob.id, carol.id];
        ids.sort_unstable();
        ids
    });
    assert_eq!(group.invited, [alice.id]);
}

#[tokio::test]
async fn unknown_ids_and_unwilling_users_are_answered_alike() {
    let app = spawn_app().await;
    let alice = person(&app, "ukalice", 0).await;
    let bob = person(&app, "ukbob", 1).await;
    let a = Device::new(&app, &alice).await;
    let unknown = UserId(bob.id.0 + 10_000);

    let to_bob = a.messenger.create_group("same", &[bob.id]).await.unwrap();
    let to_nobody = a.messenger.create_group("same", &[unknown]).await.unwrap();
    assert_eq!(to_bob.invited, [bob.id]);
    assert_eq!(to_nobody.invited, [unknown]);
    assert_eq!(shape(&to_bob), shape(&to_nobody));

    let group = a.messenger.create_group("adds", &[]).await.unwrap();
    let add_bob = a.messenger.add_members(group.id, &[bob.id]).await.unwrap();
    let add_nobody = a.messenger.add_members(group.id, &[unknown]).await.unwrap();
    assert_eq!(add_bob.invited, [bob.id]);
    assert_eq!(add_nobody.invited, [unknown]);
    assert_eq!(
        (add_bob.members, add_bob.last_seq),
        (add_nobody.members, add_nobody.last_seq)
    );
}

#[tokio::test]
async fn pending_invitations_are_capped_per_account() {
    let app = spawn_app_with(|c| c.limits.max_pending_invitations = 3).await;
    let alice = person(&app, "capalice", 0).await;
    let bob = person(&app, "capbob", 1).await;
    let a = Device::new(&app, &alice).await;
    let b = Device::new(&app, &bob).await;
    let mut groups = Vec::new();
    for i in 0..5 {
        let chat = a
            .messenger
            .create_group(&format!("spam {i}"), &[bob.id])
            .await
            .unwrap();
        // The answer does not say that an older invitation was dropped.
        assert_eq!(chat.invited, [bob.id]);
        groups.push(chat.id);
    }
    let pending: Vec<_> = b
        .messenger
        .invitations()
        .await
        .unwrap()
        .iter()
        .map(|i| i.chat_id)
        .collect();
    // The newest three, newest first.
    assert_eq!(pending, [groups[4], groups[3], groups[2]]);
    let dropped = b.messenger.accept_invitation(groups[0]).await.unwrap_err();
    assert_eq!(dropped.code(), Some(ErrorCode::InvitationNotFound));
}
