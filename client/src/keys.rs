//! The client side of the key model: derive `auth_key`/`wrap_key` from the
//! password, make or reuse the account's RSA identity, seal and open it.
//! Everything here is CPU-heavy and runs on blocking threads.

use std::sync::Arc;

use ferrogram_core::crypto::{self, AccountKeys, AuthKey, CryptoError, Identity, WrapKey};
use ferrogram_core::proto::{KdfParams, PublicKeys};

use crate::error::ClientError;

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

pub(crate) fn crypto_error(what: &str, err: &CryptoError) -> ClientError {
    ClientError::Crypto(format!("{what}: {err}"))
}

/// Derives the two keys from a password with the given salt and parameters.
pub(crate) fn derive(
    password: &str,
    salt: &[u8],
    kdf: KdfParams,
) -> Result<AccountKeys, ClientError> {
    crypto::derive_account_keys(password.as_bytes(), salt, &kdf)
        .map_err(|e| crypto_error("cannot derive keys from the password", &e))
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
    let sealed_keys = crypto::seal_identity(&identity, &wrap_key, &mut rng)
        .map_err(|e| crypto_error("cannot seal the private keys", &e))?;
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
    Identity::generate(&mut rand::rng())
        .map_err(|e| crypto_error("cannot generate the account's keys", &e))
}

/// Opens the sealed private keys; a wrong key and a damaged blob look alike.
pub(crate) fn open(sealed: &[u8], wrap_key: &WrapKey) -> Result<Identity, ClientError> {
    crypto::open_identity(sealed, wrap_key).map_err(|_| {
        ClientError::Crypto(
            "the account's private keys do not open with the key derived from this password \
             (they were sealed with another password, or damaged)"
                .into(),
        )
    })
}
