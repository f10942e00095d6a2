//! Every command of the protocol, declared once: name, access, rate class,
//! REST route (if any), request and response type.
//!
//! Each declaration is a zero-sized type implementing [`Command`]. The
//! server's handler for it implements `CommandHandler` for that same type
//! (`handlers/src/<area>/<command>.rs`), the REST route table and the
//! OpenAPI document are derived from [`ALL`], and the client library calls
//! `call::<RenameChat>(&request)`. Request and response types are those of
//! [`crate::proto`].

use crate::command::ParamType::{Integer, String as Text};
use crate::command::{Access, Command, CommandInfo, HttpMethod as M, HttpRoute, Param};
use crate::proto::{
    AddMembersRequest, ChangePasswordRequest, Chat, ChatList, ChatListRequest, ChatMemberRequest,
    ChatRef, CreateDirectRequest, CreateGroupRequest, DeleteAccountRequest, DeleteMessageRequest,
    EditMessageRequest, Empty, GetUserKeysRequest, GetUserRequest, HistoryPage, HistoryRequest,
    InvitationList, LoginRequest, LoginResponse, MarkDeliveredRequest, MarkReadRequest, Me,
    MessageAck, PreloginRequest, PreloginResponse, PresenceList, PresenceRequest, RegisterRequest,
    RegisterResponse, RenameChatRequest, ResendVerificationRequest, ResendVerificationResponse,
    RevokeSessionRequest, RevokedSessions, SearchUsersRequest, SendMessageRequest, ServerInfo,
    SessionList, SetRoleRequest, UpdateProfileRequest, UserKeys, UserList, UserProfile,
    VerifyRequest, VerifyResponse,
};

/// A REST route of a declaration.
const fn rest(method: M, path: &'static str, summary: &'static str) -> HttpRoute {
    HttpRoute {
        method,
        path,
        summary,
        params: &[],
        body: false,
    }
}

impl HttpRoute {
    const fn with_body(mut self) -> Self {
        self.body = true;
        self
    }

    const fn params(mut self, params: &'static [Param]) -> Self {
        self.params = params;
        self
    }
}

/// Declares each command (a unit struct implementing [`Command`]) and
/// lists them all in [`ALL`], so a declaration cannot be left out of it.
macro_rules! commands {
    ($(
        $(#[$doc:meta])*
        $ty:ident = $name:literal, $access:ident, rate $rate:literal,
            $req:ty => $resp:ty $(, $http:expr)?;
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, Default)]
            pub struct $ty;

            impl Command for $ty {
                const NAME: &'static str = $name;
                const ACCESS: Access = Access::$access;
                const RATE_CLASS: Option<&'static str> = Some($rate);
                const HTTP: Option<HttpRoute> = commands!(@http $($http)?);
                type Req = $req;
                type Resp = $resp;
            }
        )*

        /// Every declared command, in the order of the REST route table
        /// (WebSocket-only commands after).
        pub const ALL: &[CommandInfo] = &[$(CommandInfo::of::<$ty>()),*];
    };
    (@http) => { None };
    (@http $http:expr) => { Some($http) };
}

commands! {
    /// Describe this server.
    GetServerInfo = "server.info", Public, rate "info", Empty => ServerInfo,
        rest(M::Get, "/api/v1/server", "Describe this server");
    /// An account's key-derivation salt and parameters.
    Prelogin = "account.prelogin", Public, rate "prelogin", PreloginRequest => PreloginResponse,
        rest(
            M::Get,
            "/api/v1/prelogin",
            "Key-derivation salt and parameters of an account (a stable fake one for unknown emails)",
        )
        .params(&[Param::query("email", Text, true, "Email address of the account")]);
    /// Create an account.
    Register = "account.register", Public, rate "register", RegisterRequest => RegisterResponse,
        rest(M::Post, "/api/v1/accounts", "Create an account").with_body();
    /// Verify an email address (code or link token).
    Verify = "account.verify", Public, rate "verify", VerifyRequest => VerifyResponse,
        rest(
            M::Post,
            "/api/v1/accounts/verify",
            "Verify an email address with the code or the link token from the mail",
        )
        .with_body();
    /// Send the verification mail again.
    ResendVerification = "account.resend_verification", Public, rate "resend",
        ResendVerificationRequest => ResendVerificationResponse,
        rest(M::Post, "/api/v1/accounts/verification", "Send the verification mail again")
            .with_body();
    /// Log in.
    CreateSession = "session.create", Public, rate "login", LoginRequest => LoginResponse,
        rest(M::Post, "/api/v1/sessions", "Log in").with_body();
    /// The account's sessions.
    ListSessions = "session.list", Session, rate "session", Empty => SessionList,
        rest(M::Get, "/api/v1/sessions", "List the account's sessions");
    /// Log out every other session.
    RevokeOtherSessions = "session.revoke_others", Session, rate "session",
        Empty => RevokedSessions,
        rest(M::Delete, "/api/v1/sessions", "Log out every other session");
    /// Log out this session.
    DeleteCurrentSession = "session.delete_current", Session, rate "session", Empty => Empty,
        rest(M::Delete, "/api/v1/sessions/current", "Log out this session");
    /// Revoke one session.
    RevokeSession = "session.revoke", Session, rate "session", RevokeSessionRequest => Empty,
        rest(M::Delete, "/api/v1/sessions/{id}", "Revoke one session")
            .params(&[Param::path("id", Text, "Public id of the session (not its token)")]);
    /// The caller's own account.
    GetMe = "me.get", Session, rate "session", Empty => Me,
        rest(M::Get, "/api/v1/me", "The caller's own account");
    /// Change display name, bio, handle or who may add me.
    UpdateMe = "me.update", Session, rate "profile", UpdateProfileRequest => Me,
        rest(M::Patch, "/api/v1/me", "Change display name, bio or handle").with_body();
    /// Delete the account.
    DeleteAccount = "me.delete", Session, rate "password", DeleteAccountRequest => Empty,
        rest(M::Delete, "/api/v1/me", "Delete the account (confirmed with the auth key)")
            .with_body();
    /// Change the password.
    ChangePassword = "me.change_password", Session, rate "password",
        ChangePasswordRequest => RevokedSessions,
        rest(
            M::Put,
            "/api/v1/me/password",
            "Change the password (new auth key, re-sealed keys); revokes other sessions",
        )
        .with_body();
    /// Search users by handle or display-name prefix.
    SearchUsers = "user.search", Verified, rate "user_search", SearchUsersRequest => UserList,
        rest(M::Get, "/api/v1/users", "Search users by handle or display-name prefix").params(&[
            Param::query("query", Text, true, "Prefix of a handle or display name"),
            Param::query("limit", Integer, false, "Most users to return"),
        ]);
    /// A user's public profile.
    GetUser = "user.get", Verified, rate "user_lookup", GetUserRequest => UserProfile,
        rest(M::Get, "/api/v1/users/{handle}", "A user's public profile")
            .params(&[Param::path("handle", Text, "The user's handle")]);
    /// A user's public keys.
    GetUserKeys = "user.keys", Verified, rate "user_lookup", GetUserKeysRequest => UserKeys,
        rest(M::Get, "/api/v1/users/{id}/keys", "A user's public keys and their fingerprint")
            .params(&[Param::path("id", Integer, "The user's numeric id")]);

    /// The one direct chat with a user (created on first use).
    CreateDirectChat = "chat.create_direct", Verified, rate "chat_create",
        CreateDirectRequest => Chat;
    /// A group with the caller as owner.
    CreateGroup = "chat.create_group", Verified, rate "group_create", CreateGroupRequest => Chat;
    /// A chat with its members.
    GetChat = "chat.get", Verified, rate "read", ChatRef => Chat;
    /// One page of the caller's chats.
    ListChats = "chat.list", Verified, rate "read", ChatListRequest => ChatList;
    /// A new group title.
    RenameChat = "chat.rename", Verified, rate "chat_admin", RenameChatRequest => Chat;
    /// Add members to a group (or invite them).
    AddMembers = "chat.add_members", Verified, rate "add_members", AddMembersRequest => Chat;
    /// Take a member out of a group.
    RemoveMember = "chat.remove_member", Verified, rate "chat_admin", ChatMemberRequest => Chat;
    /// Leave a chat.
    LeaveChat = "chat.leave", Verified, rate "chat_admin", ChatRef => Empty;
    /// Change a member's role.
    SetRole = "chat.set_role", Verified, rate "chat_admin", SetRoleRequest => Chat;
    /// Hand a group to another member.
    TransferOwnership = "chat.transfer_ownership", Verified, rate "chat_admin",
        ChatMemberRequest => Chat;
    /// A typing notice to the other members (not stored).
    Typing = "chat.typing", Verified, rate "typing", ChatRef => Empty;
    /// The caller's pending invitations.
    ListInvitations = "chat.invitations", Verified, rate "read", Empty => InvitationList;
    /// Accept an invitation (become a member).
    AcceptInvitation = "chat.accept_invitation", Verified, rate "chat_admin", ChatRef => Chat;
    /// Decline an invitation.
    DeclineInvitation = "chat.decline_invitation", Verified, rate "chat_admin", ChatRef => Empty;
    /// Send a message (answered after commit).
    SendMessage = "message.send", Verified, rate "send", SendMessageRequest => MessageAck;
    /// Edit one's own message.
    EditMessage = "message.edit", Verified, rate "edit", EditMessageRequest => MessageAck;
    /// Delete one's own message for everyone.
    DeleteMessage = "message.delete", Verified, rate "edit", DeleteMessageRequest => MessageAck;
    /// One page of a chat's events.
    GetHistory = "message.history", Verified, rate "read", HistoryRequest => HistoryPage;
    /// Mark a chat read up to a seq.
    MarkRead = "message.read", Verified, rate "receipts", MarkReadRequest => Empty;
    /// Mark a chat delivered up to a seq.
    MarkDelivered = "message.delivered", Verified, rate "receipts",
        MarkDeliveredRequest => Empty;
    /// Who of some users is online.
    GetPresence = "presence.get", Verified, rate "read", PresenceRequest => PresenceList;
}

/// The declaration of a command, by name.
pub fn by_name(name: &str) -> Option<&'static CommandInfo> {
    ALL.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{ParamIn, API_PREFIX};
    use std::collections::HashSet;

    #[test]
    fn declarations_are_unique_and_well_formed() {
        let mut names = HashSet::new();
        let mut routes = HashSet::new();
        for c in ALL {
            assert!(names.insert(c.name), "{} declared twice", c.name);
            let (area, command) = c.name.split_once('.').expect("area.command");
            assert!(!area.is_empty() && !command.is_empty(), "{}", c.name);
            assert!(c.rate_class.is_some(), "{} has no rate class", c.name);
            let Some(http) = c.http else { continue };
            assert!(
                routes.insert((http.method, http.path)),
                "{} {} routed twice",
                http.method.as_str(),
                http.path
            );
            assert!(http.path.starts_with(API_PREFIX), "{}", http.path);
            assert!(!(http.body && http.method == M::Get), "{}", http.path);
            // every {param} of the path is declared, and vice versa
            let in_path: Vec<&str> = http
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            let declared: Vec<&str> = http
                .params
                .iter()
                .filter(|p| p.location == ParamIn::Path)
                .map(|p| p.name)
                .collect();
            assert_eq!(in_path, declared, "{}", http.path);
        }
        assert_eq!(
            by_name("chat.rename"),
            Some(&CommandInfo::of::<RenameChat>())
        );
        assert_eq!(by_name("chat.nope"), None);
    }

    /// Path and query parameters are fields of the request: a request with
    /// every parameter set serializes each under the parameter's name.
    #[test]
    fn route_parameters_are_request_fields() {
        use crate::ids::{SessionId, UserId};
        let fields = |v: serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        let samples: [(&CommandInfo, serde_json::Value); 5] = [
            (
                by_name("account.prelogin").unwrap(),
                serde_json::to_value(PreloginRequest {
                    email: "a@b.org".into(),
                })
                .unwrap(),
            ),
            (
                by_name("session.revoke").unwrap(),
                serde_json::to_value(RevokeSessionRequest {
                    id: SessionId("s".into()),
                })
                .unwrap(),
            ),
            (
                by_name("user.get").unwrap(),
                serde_json::to_value(GetUserRequest {
                    handle: "ada".into(),
                })
                .unwrap(),
            ),
            (
                by_name("user.keys").unwrap(),
                serde_json::to_value(GetUserKeysRequest { id: UserId(1) }).unwrap(),
            ),
            (
                by_name("user.search").unwrap(),
                serde_json::to_value(SearchUsersRequest {
                    query: "a".into(),
                    limit: Some(3),
                })
                .unwrap(),
            ),
        ];
        let mut routed: Vec<&str> = ALL
            .iter()
            .filter(|c| c.http.is_some_and(|h| !h.params.is_empty()))
            .map(|c| c.name)
            .collect();
        let mut covered: Vec<&str> = samples.iter().map(|(c, _)| c.name).collect();
        routed.sort_unstable();
        covered.sort_unstable();
        assert_eq!(
            routed, covered,
            "add a sample for each route with parameters"
        );
        for (c, value) in samples {
            let fields = fields(value);
            for p in c.http.unwrap().params {
                assert!(fields.iter().any(|f| f == p.name), "{}: {}", c.name, p.name);
            }
        }
    }
}
