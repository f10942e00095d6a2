//! The authorization matrix of issue 3: every chat and message command, for
//! a member, a removed member, a non-member, a logged-out caller, a bad
//! token, an unverified account, and a chat that does not exist.

use super::chat_support::{create_group, people, seal, send, Person};
use super::support::TestApp;
use ferrogram_core::ids::{ChatId, Seq};
use serde_json::{json, Value};

/// The world the matrix runs in.
struct World {
    /// Owner of the group.
    owner: Person,
    /// A plain member (role member).
    member: Person,
    /// Was a member, sent a message, was removed.
    removed: Person,
    /// Never a member.
    outsider: Person,
    chat: ChatId,
    /// The members' seqs of their own messages.
    member_msg: Seq,
    removed_msg: Seq,
}

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Member,
    Removed,
    Outsider,
}

impl World {
    fn person(&self, who: Who) -> &Person {
        match who {
            Who::Member => &self.member,
            Who::Removed => &self.removed,
            Who::Outsider => &self.outsider,
        }
    }

    /// A request body as `who` would honestly build it for `chat`.
    fn body(&self, command: &str, who: Who, chat: ChatId) -> Value {
        let me = self.person(who);
        let current = [&self.owner, &self.member];
        // an outsider or removed member seals for the members and itself
        let recipients: Vec<&Person> = match who {
            Who::Member => current.to_vec(),
            _ => vec![&self.owner, &self.member, me],
        };
        let own_msg = match who {
            Who::Removed => self.removed_msg,
            _ => self.member_msg,
        };
        match command {
            "chat.get" | "chat.leave" | "chat.typing" | "message.history" => {
                json!({"chat_id": chat})
            }
            "chat.rename" => json!({"chat_id": chat, "title": "mine now"}),
            "chat.add_members" => json!({"chat_id": chat, "user_ids": [self.outsider.id]}),
            "chat.remove_member" | "chat.transfer_ownership" => {
                json!({"chat_id": chat, "user_id": self.owner.id})
            }
            "chat.set_role" => {
                json!({"chat_id": chat, "user_id": self.owner.id, "role": "member"})
            }
            "message.send" => json!({
                "chat_id": chat,
                "client_msg_id": format!("{who:?}-send"),
                "envelope": seal(chat, me, &format!("{who:?}-send"), "x", &recipients),
            }),
            "message.edit" => json!({
                "chat_id": chat,
                "target_seq": own_msg,
                "envelope": seal(chat, me, &format!("{who:?}-edit"), "y", &recipients),
            }),
            "message.delete" => json!({"chat_id": chat, "target_seq": own_msg}),
            "message.read" | "message.delivered" => json!({"chat_id": chat, "seq": 1}),
            other => panic!("no body for {other}"),
        }
    }
}

async fn world(app: &TestApp) -> World {
    let mut p = people(app, &["owner", "member", "removed", "outsider"]).await;
    let outsider = p.pop().unwrap();
    let removed = p.pop().unwrap();
    let member = p.pop().unwrap();
    let owner = p.pop().unwrap();
    let chat = create_group(app, &owner, &[&member, &removed]).await.id;
    let all = [&owner, &member, &removed];
    let member_msg = send(app, chat, &member, "member-msg", &all).await.seq;
    let removed_msg = send(app, chat, &removed, "removed-msg", &all).await.seq;
    app.ok(
        "chat.remove_member",
        owner.token(),
        json!({"chat_id": chat, "user_id": removed.id}),
    )
    .await;
    World {
        owner,
        member,
        removed,
        outsider,
        chat,
        member_msg,
        removed_msg,
    }
}

/// Every command about one chat, with what a plain member gets. The
/// removed member and the outsider get `not_a_member` for all of them.
const CHAT_COMMANDS: &[(&str, &str)] = &[
    ("chat.get", "ok"),
    ("chat.rename", "not_chat_admin"),
    ("chat.add_members", "not_chat_admin"),
    ("chat.remove_member", "not_chat_admin"),
    ("chat.set_role", "not_chat_admin"),
    ("chat.transfer_ownership", "not_chat_admin"),
    ("chat.typing", "ok"),
    ("message.send", "ok"),
    ("message.edit", "ok"),
    ("message.history", "ok"),
    ("message.read", "ok"),
    ("message.delivered", "ok"),
    ("message.delete", "ok"),
    // last: it ends the membership
    ("chat.leave", "ok"),
];

/// Commands that are not about one chat.
/// Builds a request body.
type BodyOf = fn(&World) -> Value;

const OTHER_COMMANDS: &[(&str, BodyOf)] = &[
    ("chat.list", |_| json!({})),
    ("chat.create_direct", |w| json!({"user_id": w.owner.id})),
    (
        "chat.create_group",
        |w| json!({"title": "t", "member_ids": [w.owner.id]}),
    ),
    ("presence.get", |w| json!({"user_ids": [w.owner.id]})),
];

async fn outcome(app: &TestApp, command: &str, token: Option<&str>, body: Value) -> String {
    match app.call(command, token, body).await {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.code.as_str().to_owned(),
    }
}

#[tokio::test]
async fn every_chat_command_admits_members_only() {
    let app = TestApp::new();
    let w = world(&app).await;
    let mut table = Vec::new();
    // outsiders first: the member's turn changes the chat (leave, delete)
    for who in [Who::Removed, Who::Outsider, Who::Member] {
        for (command, member_gets) in CHAT_COMMANDS {
            let expected = if who == Who::Member {
                *member_gets
            } else {
                "not_a_member"
            };
            let body = w.body(command, who, w.chat);
            let got = outcome(&app, command, w.person(who).token(), body).await;
            table.push(format!("{command} as {who:?}: {got}"));
            assert_eq!(got, expected, "{command} as {who:?}");
        }
    }
    // the owner's own rights are covered in tests::chats; here: nothing the
    // refused callers tried left a trace (2 messages, a removal, then the
    // member's send, edit, delete and leave)
    let stored = app
        .ctx
        .storage
        .with_conn(|conn| ferrogram_storage::events::count(conn, w.chat))
        .unwrap();
    assert_eq!(stored, 8, "{table:#?}");
}

#[tokio::test]
async fn a_chat_that_does_not_exist_is_chat_not_found() {
    let app = TestApp::new();
    let w = world(&app).await;
    let missing = ChatId(9_999);
    for (command, _) in CHAT_COMMANDS {
        let body = w.body(command, Who::Outsider, missing);
        assert_eq!(
            outcome(&app, command, w.outsider.token(), body).await,
            "chat_not_found",
            "{command}"
        );
    }
}

#[tokio::test]
async fn logged_out_and_unverified_callers_are_refused_before_anything_else() {
    let app = TestApp::new();
    let w = world(&app).await;
    app.register("late@x.org", "late").await;
    let unverified = app.login("late@x.org", "late").await.token;
    let mut commands: Vec<(&str, Value)> = CHAT_COMMANDS
        .iter()
        .map(|(command, _)| (*command, w.body(command, Who::Member, w.chat)))
        .collect();
    commands.extend(
        OTHER_COMMANDS
            .iter()
            .map(|(command, body)| (*command, body(&w))),
    );
    for (command, body) in &commands {
        for (token, expected) in [
            (None, "unauthorized"),
            (Some("not-a-token"), "unauthorized"),
            (Some(unverified.as_str()), "email_not_verified"),
        ] {
            assert_eq!(
                outcome(&app, command, token, body.clone()).await,
                expected,
                "{command} with {token:?}"
            );
        }
    }
    // a logged-out session is a logged-out caller
    app.ok("session.delete_current", w.member.token(), json!({}))
        .await;
    for (command, body) in &commands {
        assert_eq!(
            outcome(&app, command, w.member.token(), body.clone()).await,
            "unauthorized",
            "{command} after logout"
        );
    }
}

#[tokio::test]
async fn commands_about_no_one_chat_show_only_the_callers_chats() {
    let app = TestApp::new();
    let w = world(&app).await;
    for (command, body) in OTHER_COMMANDS {
        for who in [&w.member, &w.removed, &w.outsider] {
            assert_eq!(
                outcome(&app, command, who.token(), body(&w)).await,
                "ok",
                "{command}"
            );
        }
    }
    let listed = |who: &Person| {
        let app = &app;
        let token = who.token.clone();
        async move {
            let list = app.ok("chat.list", Some(&token), json!({})).await;
            list["chats"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == w.chat.0)
        }
    };
    assert!(listed(&w.member).await);
    assert!(!listed(&w.removed).await);
    assert!(!listed(&w.outsider).await);
}
