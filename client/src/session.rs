//! A logged-in session: the bearer token, the account as last seen, and (after
//! a log-in with the password) the opened private keys.

use std::sync::{Arc, Mutex, PoisonError};

use ferrogram_core::b64::B64;
use ferrogram_core::command::Command;
use ferrogram_core::commands;
use ferrogram_core::crypto::{self, Identity};
use ferrogram_core::ids::{SessionId, UserId};
use ferrogram_core::proto::{
    ChangePasswordRequest, DeleteAccountRequest, Empty, GetUserKeysRequest, GetUserRequest, Me,
    RevokeSessionRequest, RevokedSessions, SearchUsersRequest, SessionInfo, SessionList,
    UpdateProfileRequest, UserKeys, UserList, UserProfile,
};
use ferrogram_core::validate;
use ferrogram_core::{ApiError, ErrorCode};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::client::Client;
use crate::error::ClientError;
use crate::error::KeyError;
use crate::keys::{self, check_new_password, run_blocking, AccountSecrets};

/// A session on one server. Deliberately not `Debug`: it holds the token and
/// the private keys. All methods take `&self`, so it can be shared (`Arc`).
pub struct Session {
    client: Client,
    token: Zeroizing<String>,
    id: SessionId,
    state: Mutex<State>,
}

struct State {
    me: Me,
    secrets: Option<Arc<AccountSecrets>>,
}

impl Session {
    pub(crate) fn new(
        client: Client,
        token: Zeroizing<String>,
        id: SessionId,
        me: Me,
        secrets: Option<AccountSecrets>,
    ) -> Self {
        Self {
            client,
            token,
            id,
            state: Mutex::new(State {
                me,
                secrets: secrets.map(Arc::new),
            }),
        }
    }

    pub(crate) async fn resume(
        client: Client,
        token: Zeroizing<String>,
    ) -> Result<Self, ClientError> {
        if token.trim().is_empty() {
            return Err(ClientError::invalid_input("the session token is empty"));
        }
        let me: Me = client
            .call::<commands::GetMe>(&Empty {}, Some(&token))
            .await?;
        let list: SessionList = client
            .call::<commands::ListSessions>(&Empty {}, Some(&token))
            .await?;
        let id = list
            .sessions
            .into_iter()
            .find(|s| s.current)
            .map(|s| s.id)
            .ok_or_else(|| {
                ClientError::Protocol("the session list does not mark the current session".into())
            })?;
        Ok(Self::new(client, token, id, me, None))
    }

    /// The bearer token. Store it only where the user's secrets go (0600 file,
    /// keyring); it is sent only in the `Authorization` header.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The public id of this session (as in [`Session::sessions`]).
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The account as last fetched or updated (no request).
    pub fn cached_me(&self) -> Me {
        self.lock().me.clone()
    }

    pub fn user_id(&self) -> UserId {
        self.lock().me.id
    }

    /// The account's private keys, when this session was opened with the password.
    pub fn identity(&self) -> Option<Arc<Identity>> {
        self.lock()
            .secrets
            .as_ref()
            .map(|s| Arc::clone(&s.identity))
    }

    /// True when the private keys are open (a log-in with the password, not a
    /// resumed token).
    pub fn has_keys(&self) -> bool {
        self.lock().secrets.is_some()
    }

    /// The open keys with what re-sealing them needs (see `unlock.rs`).
    pub(crate) fn secrets(&self) -> Option<Arc<AccountSecrets>> {
        self.lock().secrets.clone()
    }

    /// Gives a resumed session its keys (see `unlock.rs`).
    pub(crate) fn set_secrets(&self, secrets: AccountSecrets) {
        self.lock().secrets = Some(Arc::new(secrets));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls a command with this session's token (see `Client::call`).
    async fn call<C: Command>(&self, request: &C::Req) -> Result<C::Resp, ClientError> {
        self.client.call::<C>(request, Some(&self.token)).await
    }

    /// `GET /me`: the account, fresh from the server.
    pub async fn me(&self) -> Result<Me, ClientError> {
        let me: Me = self.call::<commands::GetMe>(&Empty {}).await?;
        self.lock().me = me.clone();
        Ok(me)
    }

    /// `PATCH /me`: changes the fields given (checked locally first).
    pub async fn update_profile(&self, update: UpdateProfileRequest) -> Result<Me, ClientError> {
        let update = UpdateProfileRequest {
            display_name: update
                .display_name
                .as_deref()
                .map(validate::display_name)
                .transpose()
                .map_err(ClientError::InvalidInput)?,
            bio: update
                .bio
                .as_deref()
                .map(validate::bio)
                .transpose()
                .map_err(ClientError::InvalidInput)?,
            handle: update
                .handle
                .as_deref()
                .map(validate::handle)
                .transpose()
                .map_err(ClientError::InvalidInput)?,
            who_can_add_me: update.who_can_add_me,
        };
        let me: Me = self.call::<commands::UpdateMe>(&update).await?;
        self.lock().me = me.clone();
        Ok(me)
    }

    /// `GET /sessions`: every session of the account.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, ClientError> {
        let list: SessionList = self.call::<commands::ListSessions>(&Empty {}).await?;
        Ok(list.sessions)
    }

    /// `DELETE /sessions/{id}`: ends another (or this) session.
    pub async fn revoke_session(&self, id: &SessionId) -> Result<(), ClientError> {
        self.call::<commands::RevokeSession>(&RevokeSessionRequest { id: id.clone() })
            .await
            .map(|_| ())
    }

    /// `DELETE /sessions`: ends every session but this one; answers how many.
    pub async fn revoke_other_sessions(&self) -> Result<u32, ClientError> {
        let revoked: RevokedSessions = self
            .call::<commands::RevokeOtherSessions>(&Empty {})
            .await?;
        Ok(revoked.revoked)
    }

    /// `DELETE /sessions/current`: logs out. The token is dead afterwards.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.call::<commands::DeleteCurrentSession>(&Empty {})
            .await
            .map(|_| ())
    }

    /// The current salt and KDF parameters: kept from the log-in, else asked.
    async fn current_kdf(
        &self,
    ) -> Result<(Vec<u8>, ferrogram_core::proto::KdfParams), ClientError> {
        let (secrets, email) = {
            let state = self.lock();
            (state.secrets.clone(), state.me.email.clone())
        };
        if let Some(secrets) = secrets {
            return Ok((secrets.salt.clone(), secrets.kdf));
        }
        let pre = self.client.prelogin(&email).await?;
        Ok((pre.salt.0, pre.kdf))
    }

    /// `PUT /me/password`: derives keys for the new password with a new salt,
    /// seals the same private keys with the new `wrap_key`, and proves the old
    /// password with its `auth_key`. The server ends every other session;
    /// answers how many. Needs the open keys (a log-in with the password).
    pub async fn change_password(&self, old: &str, new: &str) -> Result<u32, ClientError> {
        check_new_password(new)?;
        let secrets = self.lock().secrets.clone().ok_or_else(|| {
            ClientError::invalid_input("log in with the password first: this session has no keys")
        })?;
        let new_kdf = self.client.kdf_for_new_keys();
        let old = Zeroizing::new(old.to_owned());
        let new = Zeroizing::new(new.to_owned());
        let identity = Arc::clone(&secrets.identity);
        let (old_salt, old_kdf) = (secrets.salt.clone(), secrets.kdf);
        let (old_keys, material) = run_blocking(move || {
            let old_keys = keys::derive(&old, &old_salt, old_kdf)?;
            // The same password and salt give the same wrap key: a different one
            // means the old password is wrong, and the server need not be asked.
            if !bool::from(
                old_keys
                    .wrap_key
                    .as_bytes()
                    .ct_eq(secrets.wrap_key.as_bytes()),
            ) {
                return Err(ClientError::InvalidInput(ApiError::new(
                    ErrorCode::InvalidCredentials,
                    "the current password is wrong",
                )));
            }
            let material = keys::reseal(&new, new_kdf, identity)?;
            // Never replace the only copy of the private keys with a blob that
            // does not open.
            keys::open(&material.sealed_keys, &material.wrap_key)?;
            Ok((old_keys, material))
        })
        .await?;
        let request = ChangePasswordRequest {
            old_auth_key: old_keys.auth_key.to_b64(),
            new_auth_key: material.auth_key.to_b64(),
            new_kdf_salt: B64(material.salt.clone()),
            new_kdf,
            sealed_keys: B64(material.sealed_keys),
        };
        let revoked: RevokedSessions = self.call::<commands::ChangePassword>(&request).await?;
        self.lock().secrets = Some(Arc::new(AccountSecrets {
            identity: material.identity,
            wrap_key: material.wrap_key,
            salt: material.salt,
            kdf: new_kdf,
        }));
        Ok(revoked.revoked)
    }

    /// `DELETE /me`: deletes the account, confirmed with the password.
    pub async fn delete_account(&self, password: &str) -> Result<(), ClientError> {
        let (salt, kdf) = self.current_kdf().await?;
        let password = Zeroizing::new(password.to_owned());
        let derived = run_blocking(move || keys::derive(&password, &salt, kdf)).await?;
        let request = DeleteAccountRequest {
            auth_key: derived.auth_key.to_b64(),
        };
        self.call::<commands::DeleteAccount>(&request)
            .await
            .map(|_| ())
    }

    /// `GET /users/{handle}`.
    pub async fn get_user(&self, handle: &str) -> Result<UserProfile, ClientError> {
        let handle = validate::handle(handle).map_err(ClientError::InvalidInput)?;
        self.call::<commands::GetUser>(&GetUserRequest { handle })
            .await
    }

    /// `GET /users?query=&limit=`: users whose handle or display name starts
    /// with `query`.
    pub async fn search_users(
        &self,
        query: &str,
        limit: Option<u32>,
    ) -> Result<Vec<UserProfile>, ClientError> {
        let request = SearchUsersRequest {
            query: query.to_owned(),
            limit,
        };
        let list: UserList = self.call::<commands::SearchUsers>(&request).await?;
        Ok(list.users)
    }

    /// `GET /users/{id}/keys`, with the fingerprint recomputed here: a server
    /// that sends a fingerprint not matching the keys is not believed.
    pub async fn user_keys(&self, user_id: UserId) -> Result<UserKeys, ClientError> {
        let keys: UserKeys = self
            .call::<commands::GetUserKeys>(&GetUserKeysRequest { id: user_id })
            .await?;
        if keys.user_id != user_id {
            return Err(ClientError::Protocol(format!(
                "asked for the keys of user {user_id}, got those of {}",
                keys.user_id
            )));
        }
        crypto::validate_public_keys(&keys.public_keys)
            .map_err(|source| KeyError::InvalidPublicKeys { user_id, source })?;
        let ours = crypto::fingerprint(&keys.public_keys);
        if !crypto::fingerprints_match(&ours, &keys.fingerprint) {
            return Err(KeyError::FingerprintMismatch(user_id).into());
        }
        Ok(keys)
    }
}
