//! The client side of the key model: derive `auth_key`/`wrap_key` from the
//! password, make or reuse the account's RSA identity, seal and open it.
//! Everything here is CPU-heavy and runs on blocking threads.

use std::sync::Arc;

use ferrogram_core::crypto::{self, AccountKeys, AuthKey, Identity, WrapKey};
use ferrogram_core::proto::{KdfParams, PublicKeys};

use crate::error::{ClientError, KeyError};

/// Shortest password the client accepts for a new account or password change.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A password for new keys: long enough to be worth deriving keys from.
pub(crate) fn check_new_password(password: &str) -> Result<(), ClientError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ClientError::invalid_input(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Runs CPU-heavy crypto (Argon2id, RSA) off the async threads.
pub(crate) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ClientError> + Send + 'static,
) -> Result<T, ClientError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|source| KeyError::Interrupted {
            work: "key work",
            source,
        })?
}

/// What a logged-in session keeps to re-seal its keys (password change).
pub(crate) struct AccountSecrets {
    pub identity: Arc<Identity>,
    pub wrap_key: WrapKey,
    /// The current salt and parameters of the password KDF.
    pub salt: Vec<u8>,
    pub kdf: KdfParams,
}

/// Everything a registration or password change sends, built from a password.
pub(crate) struct NewKeyMaterial {
    pub auth_key: AuthKey,
    pub wrap_key: WrapKey,
    pub salt: Vec<u8>,
    pub public_keys: PublicKeys,
    pub sealed_keys: Vec<u8>,
    pub identity: Arc<Identity>,
}

/// Derives the two keys from a password with the given salt and parameters.
pub(crate) fn derive(
    password: &str,
    salt: &[u8],
    kdf: KdfParams,
) -> Result<AccountKeys, ClientError> {
    crypto::derive_account_keys(password.as_bytes(), salt, &kdf)
        .map_err(|e| KeyError::Derive(e).into())
}

/// A fresh salt, keys derived from `password`, and `identity` (or a newly
/// generated one) sealed with the new `wrap_key`.
pub(crate) fn new_account(
    password: &str,
    kdf: KdfParams,
    identity: Option<Arc<Identity>>,
) -> Result<NewKeyMaterial, ClientError> {
    let identity = match identity {
        Some(identity) => identity,
        None => Arc::new(generate_identity()?),
    };
    reseal(password, kdf, identity)
}

/// A new salt and keys for `password`, and the same identity sealed again.
pub(crate) fn reseal(
    password: &str,
    kdf: KdfParams,
    identity: Arc<Identity>,
) -> Result<NewKeyMaterial, ClientError> {
    let mut rng = rand::rng();
    let salt = crypto::random_salt(&mut rng).to_vec();
    let AccountKeys { auth_key, wrap_key } = derive(password, &salt, kdf)?;
    let sealed_keys =
        crypto::seal_identity(&identity, &wrap_key, &mut rng).map_err(KeyError::SealIdentity)?;
    Ok(NewKeyMaterial {
        auth_key,
        wrap_key,
        salt,
        public_keys: identity.public_keys(),
        sealed_keys,
        identity,
    })
}

/// Two new RSA-3072 key pairs. Takes seconds.
pub fn generate_identity() -> Result<Identity, ClientError> {
    Identity::generate(&mut rand::rng()).map_err(|e| KeyError::Generate(e).into())
}

/// Opens the sealed private keys; a wrong key and a damaged blob look alike.
pub(crate) fn open(sealed: &[u8], wrap_key: &WrapKey) -> Result<Identity, ClientError> {
    crypto::open_identity(sealed, wrap_key).map_err(|e| KeyError::Open(e).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessengerError;
    use ferrogram_core::crypto::CryptoError;
    use std::error::Error as _;

    #[test]
    fn a_key_failure_keeps_the_crypto_error_as_its_source() {
        let err = open(b"not sealed keys", &WrapKey::from_bytes([7; 32])).unwrap_err();
        assert!(
            matches!(err, ClientError::Crypto(KeyError::Open(_))),
            "{err:?}"
        );
        let keys = err
            .source()
            .and_then(|e| e.downcast_ref::<KeyError>())
            .expect("the ClientError's source is the KeyError");
        assert_eq!(
            keys.source().and_then(|e| e.downcast_ref::<CryptoError>()),
            Some(&CryptoError::Open)
        );
        // Seen through the messenger (its `Client` variant is transparent):
        // the same chain.
        let through = MessengerError::from(err);
        assert!(through
            .source()
            .and_then(|e| e.downcast_ref::<KeyError>())
            .is_some_and(|e| matches!(e, KeyError::Open(_))));
        assert!(
            through
                .to_string()
                .starts_with("crypto error: the account's private keys do not open"),
            "{through}"
        );
    }

    #[test]
    fn short_passwords_are_refused() {
        let short = "x".repeat(MIN_PASSWORD_CHARS - 1);
        let err = check_new_password(&short).unwrap_err();
        assert_eq!(err.code(), Some(ferrogram_core::ErrorCode::BadRequest));
        assert!(check_new_password(&"x".repeat(MIN_PASSWORD_CHARS)).is_ok());
    }
}
