//! Keeping the private keys on a device without keeping them in the clear.
//!
//! [`LockedKeys`] is the account's identity sealed with the password-derived
//! `wrap_key`, with the salt and KDF parameters to derive it again: exactly
//! what the server stores, so a copy on disk reveals nothing without the
//! password (an Argon2id guess per try). A session resumed from a token has
//! no keys; [`Session::unlock`] opens them with the password, without a new
//! log-in.

use std::sync::Arc;

use ferrogram_core::b64::B64;
use ferrogram_core::crypto::WrapKey;
use ferrogram_core::ids::UserId;
use ferrogram_core::proto::KdfParams;
use ferrogram_core::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::ClientError;
use crate::error::KeyError;
use crate::keys::{self, run_blocking, AccountSecrets};
use crate::session::Session;

/// The account's private keys, sealed with the key derived from the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedKeys {
    pub user_id: UserId,
    /// Fingerprint of the public keys they belong to.
    pub fingerprint: String,
    pub kdf_salt: B64,
    pub kdf: KdfParams,
    pub sealed_keys: B64,
}

impl Session {
    /// This session's open keys, sealed for keeping on disk; `None` when the
    /// session has no keys (resumed from a token and not unlocked).
    pub async fn locked_keys(&self) -> Result<Option<LockedKeys>, ClientError> {
        let Some(secrets) = self.secrets() else {
            return Ok(None);
        };
        let me = self.cached_me();
        let sealing = Arc::clone(&secrets);
        let sealed = run_blocking(move || {
            ferrogram_core::crypto::seal_identity(
                &sealing.identity,
                &sealing.wrap_key,
                &mut rand::rng(),
            )
            .map_err(|e| KeyError::SealIdentity(e).into())
        })
        .await?;
        Ok(Some(LockedKeys {
            user_id: me.id,
            fingerprint: secrets.identity.fingerprint(),
            kdf_salt: B64(secrets.salt.clone()),
            kdf: secrets.kdf,
            sealed_keys: B64(sealed),
        }))
    }

    /// The key derived from the password that opens [`LockedKeys`], for a
    /// client that keeps it in the OS keyring (so the app opens without the
    /// password); `None` when the session has no open keys.
    pub fn wrap_key(&self) -> Option<WrapKey> {
        self.secrets().map(|s| s.wrap_key.clone())
    }

    /// Opens `locked` with a wrap key kept from an earlier unlock or log-in
    /// (see [`Session::wrap_key`]) and gives this session the keys. Refuses
    /// keys of another account, and a key that does not open them.
    pub async fn unlock_with_key(
        &self,
        wrap_key: &WrapKey,
        locked: &LockedKeys,
    ) -> Result<(), ClientError> {
        self.check_owner(locked)?;
        let sealed = locked.sealed_keys.0.clone();
        let key = wrap_key.clone();
        let identity = run_blocking(move || keys::open(&sealed, &key)).await?;
        self.adopt(identity, wrap_key.clone(), locked)
    }

    fn check_owner(&self, locked: &LockedKeys) -> Result<(), ClientError> {
        let me = self.cached_me();
        if locked.user_id != me.id {
            return Err(ClientError::invalid_input(format!(
                "these keys belong to user {}, not {}",
                locked.user_id, me.id
            )));
        }
        Ok(())
    }

    /// Gives this session opened keys, once they match the account's public keys.
    fn adopt(
        &self,
        identity: ferrogram_core::crypto::Identity,
        wrap_key: WrapKey,
        locked: &LockedKeys,
    ) -> Result<(), ClientError> {
        if identity.public_keys() != self.cached_me().public_keys {
            return Err(KeyError::NotTheAccountsKeys.into());
        }
        self.set_secrets(AccountSecrets {
            identity: Arc::new(identity),
            wrap_key,
            salt: locked.kdf_salt.0.clone(),
            kdf: locked.kdf,
        });
        Ok(())
    }

    /// Opens `locked` with the password and gives this session the keys.
    /// Refuses keys of another account, KDF parameters below this client's
    /// floor, and keys that do not match the account's public keys.
    pub async fn unlock(&self, password: &str, locked: &LockedKeys) -> Result<(), ClientError> {
        self.check_owner(locked)?;
        let floor = self
            .client()
            .options()
            .kdf_override
            .unwrap_or(KdfParams::DEFAULT);
        if !locked.kdf.is_acceptable(&floor) {
            return Err(ClientError::invalid_input(
                "the stored keys use key derivation parameters this client does not accept",
            ));
        }
        let password = Zeroizing::new(password.to_owned());
        let salt = locked.kdf_salt.0.clone();
        let kdf = locked.kdf;
        let sealed = locked.sealed_keys.0.clone();
        let (identity, wrap_key) = run_blocking(move || {
            let derived = keys::derive(&password, &salt, kdf)?;
            // Same password and salt, same wrap key: if it does not open
            // the blob, the password is wrong.
            let identity = keys::open(&sealed, &derived.wrap_key).map_err(|_| {
                ClientError::InvalidInput(ApiError::new(
                    ErrorCode::InvalidCredentials,
                    "wrong password: the stored keys do not open with it",
                ))
            })?;
            Ok((identity, derived.wrap_key))
        })
        .await?;
        self.adopt(identity, wrap_key, locked)
    }
}
