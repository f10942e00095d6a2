//! Accounts, sessions, profiles and the server description.

use crate::b64::B64;
use crate::ids::{SessionId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// `server.info` (`GET /api/v1/server`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Always `ferrogram`: how a client knows it reached a Ferrogram server.
    pub name: String,
    pub version: String,
    pub protocol_version: u32,
    pub features: Vec<String>,
    pub registration_open: bool,
    /// Smallest client KDF parameters this server accepts for new accounts.
    pub min_kdf: KdfParams,
}

/// Parameters of the client-side Argon2id key derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Always `argon2id` for now.
    pub alg: KdfAlg,
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KdfAlg {
    Argon2id,
}

impl KdfParams {
    /// OWASP's Argon2id recommendation (19 MiB, 2 passes, 1 lane).
    pub const DEFAULT: KdfParams = KdfParams {
        alg: KdfAlg::Argon2id,
        m_cost_kib: 19_456,
        t_cost: 2,
        p_cost: 1,
    };
    /// Upper bounds a client accepts from a server (so a hostile server cannot
    /// make a client allocate without limit).
    pub const MAX_M_COST_KIB: u32 = 1024 * 1024;
    pub const MAX_T_COST: u32 = 64;
    pub const MAX_P_COST: u32 = 16;

    /// True when these parameters are at least `min` in every dimension and
    /// within the client-side maxima.
    pub fn is_acceptable(&self, min: &KdfParams) -> bool {
        self.m_cost_kib >= min.m_cost_kib
            && self.t_cost >= min.t_cost
            && self.p_cost >= min.p_cost
            && self.m_cost_kib <= Self::MAX_M_COST_KIB
            && self.t_cost <= Self::MAX_T_COST
            && self.p_cost <= Self::MAX_P_COST
            && self.m_cost_kib >= 8 * self.p_cost
    }
}

/// An account's two RSA public keys, as DER SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeys {
    /// RSA-PSS (SHA-256) signing key.
    pub sign: B64,
    /// RSA-OAEP (SHA-256) encryption key.
    pub enc: B64,
}

/// `account.prelogin` (`GET /api/v1/prelogin?email=`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreloginRequest {
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreloginResponse {
    pub salt: B64,
    pub kdf: KdfParams,
}

/// `account.register` (`POST /api/v1/accounts`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub handle: String,
    pub display_name: String,
    /// 32 bytes derived by the client; the server stores only an Argon2id hash.
    pub auth_key: B64,
    /// Client-chosen salt of the password KDF (16 to 64 bytes).
    pub kdf_salt: B64,
    pub kdf: KdfParams,
    pub public_keys: PublicKeys,
    /// The private keys, sealed by the client with its `wrap_key`.
    pub sealed_keys: B64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub user_id: UserId,
    pub handle: String,
    /// Until verified, the account can log in but not message.
    pub verified: bool,
}

/// `account.verify` (`POST /api/v1/accounts/verify`): either the email and the
/// 6-digit code from the mail, or the link token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResponse {
    pub user_id: UserId,
    pub verified: bool,
}

/// `account.resend_verification` (`POST /api/v1/accounts/verification`).
/// Answers the same whether or not the email has an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResendVerificationRequest {
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResendVerificationResponse {
    /// Seconds until another resend is allowed.
    pub cooldown_secs: u64,
}

/// `session.create` (`POST /api/v1/sessions`): log in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub auth_key: B64,
    /// Shown in the list of sessions, e.g. "ferrogram-cli on laptop".
    #[serde(default)]
    pub device_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    /// 256-bit bearer token, base64url. Shown once; the server keeps only its hash.
    pub token: String,
    pub session: SessionInfo,
    pub me: Me,
    pub sealed_keys: B64,
}

/// A login session as listed by `session.list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: SessionId,
    pub device_name: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    /// True for the session making the request.
    pub current: bool,
}

/// `session.list` (`GET /api/v1/sessions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

/// `session.revoke` (`DELETE /api/v1/sessions/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeSessionRequest {
    pub id: SessionId,
}

/// Answer of `session.revoke_others` (`DELETE /api/v1/sessions`) and of a
/// password change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedSessions {
    pub revoked: u32,
}

/// An empty JSON object, for commands with nothing to say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// The caller's own account (`me.get`, `GET /api/v1/me`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub id: UserId,
    pub email: String,
    pub handle: String,
    pub display_name: String,
    pub bio: String,
    pub verified: bool,
    pub created_at: Timestamp,
    pub public_keys: PublicKeys,
    pub fingerprint: String,
    /// Who may put me into a group directly; anyone else only invites me.
    #[serde(default)]
    pub who_can_add_me: GroupAddPolicy,
}

/// Who may add an account to a group without asking (`me.update`'s
/// `who_can_add_me`). Everyone else's `chat.create_group` /
/// `chat.add_members` makes an invitation the account accepts or declines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupAddPolicy {
    /// Anyone who knows my user id.
    Everyone,
    /// People I chat with: members of a group I am in, and the peer of a
    /// direct chat in which I have written (or which I started).
    #[default]
    ChatPartners,
    /// Nobody: every add is an invitation.
    Nobody,
}

impl GroupAddPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupAddPolicy::Everyone => "everyone",
            GroupAddPolicy::ChatPartners => "chat_partners",
            GroupAddPolicy::Nobody => "nobody",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "everyone" => Some(GroupAddPolicy::Everyone),
            "chat_partners" => Some(GroupAddPolicy::ChatPartners),
            "nobody" => Some(GroupAddPolicy::Nobody),
            _ => None,
        }
    }
}

/// `me.update` (`PATCH /api/v1/me`): only the fields given change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// The privacy setting "who can add me to groups".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who_can_add_me: Option<GroupAddPolicy>,
}

/// `me.change_password` (`PUT /api/v1/me/password`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub old_auth_key: B64,
    pub new_auth_key: B64,
    pub new_kdf_salt: B64,
    pub new_kdf: KdfParams,
    /// The same private keys, re-sealed with the new `wrap_key`.
    pub sealed_keys: B64,
}

/// `me.delete` (`DELETE /api/v1/me`): confirmed with the current auth key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    pub auth_key: B64,
}

/// Another user as others see them (`user.get`, `user.search`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    pub id: UserId,
    pub handle: String,
    pub display_name: String,
    pub bio: String,
}

/// `user.get` (`GET /api/v1/users/{handle}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetUserRequest {
    pub handle: String,
}

/// `user.search` (`GET /api/v1/users?query=&limit=`): prefix of handle or
/// display name. Only for logged-in callers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchUsersRequest {
    pub query: String,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserProfile>,
}

/// `user.keys` (`GET /api/v1/users/{id}/keys`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetUserKeysRequest {
    pub id: UserId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserKeys {
    pub user_id: UserId,
    pub public_keys: PublicKeys,
    /// SHA-256 fingerprint over both keys, grouped hex (see `crypto::fingerprint`).
    pub fingerprint: String,
}
