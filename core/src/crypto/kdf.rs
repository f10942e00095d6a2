//! Client-side password key derivation (the password-manager model).
//!
//! password + per-account salt --Argon2id--> master key --HKDF-SHA256--> two
//! independent keys:
//! - `auth_key` is sent to the server to log in (the server stores only an
//!   Argon2id hash of it), so the server never sees the password;
//! - `wrap_key` never leaves the client and seals the account's private keys,
//!   so the server cannot read them even though it stores them.
//!
//! Knowing `auth_key` reveals nothing about `wrap_key`: HKDF outputs under
//! different info strings are independent.

use super::CryptoError;
use crate::b64::B64;
use crate::proto::{KdfAlg, KdfParams};
use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of the master, auth and wrap keys in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the salt `random_salt` makes.
pub const SALT_LEN: usize = 16;
/// Accepted salt lengths (the server stores 16 to 64 bytes).
pub const MIN_SALT_LEN: usize = 16;
pub const MAX_SALT_LEN: usize = 64;

/// The floor below which no parameters are ever used, whatever a server
/// advertises. Deliberately tiny so tests run fast; real accounts use
/// `KdfParams::DEFAULT`, and servers enforce their own `min_kdf` on top.
pub const MIN_PARAMS: KdfParams = KdfParams {
    alg: KdfAlg::Argon2id,
    m_cost_kib: 64,
    t_cost: 1,
    p_cost: 1,
};

// Changing either label changes every account's keys: they are part of the protocol.
const AUTH_KEY_INFO: &[u8] = b"ferrogram/v1/auth-key";
const WRAP_KEY_INFO: &[u8] = b"ferrogram/v1/wrap-key";

/// Proves knowledge of the password to the server. A secret: zeroized on drop,
/// never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AuthKey([u8; KEY_LEN]);

/// Seals the account's private keys. Never leaves the client.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct WrapKey([u8; KEY_LEN]);

impl AuthKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key as it travels in `RegisterRequest`/`LoginRequest`. The copy is
    /// not zeroized: drop the request soon after sending it.
    pub fn to_b64(&self) -> B64 {
        B64(self.0.to_vec())
    }
}

impl WrapKey {
    /// Rebuilds a wrap key a client kept (for instance in its OS keyring).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthKey(<redacted>)")
    }
}

impl std::fmt::Debug for WrapKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WrapKey(<redacted>)")
    }
}

/// The two keys derived from a password.
#[derive(Debug, Clone)]
pub struct AccountKeys {
    pub auth_key: AuthKey,
    pub wrap_key: WrapKey,
}

/// A fresh per-account salt, chosen by the client at registration and at every
/// password change.
pub fn random_salt(rng: &mut impl CryptoRng) -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    salt
}

/// Derives `auth_key` and `wrap_key` from a password. Costs what `params` say
/// (about 19 MiB and tens of milliseconds with the defaults): call it off the
/// UI thread.
pub fn derive_account_keys(
    password: &[u8],
    salt: &[u8],
    params: &KdfParams,
) -> Result<AccountKeys, CryptoError> {
    // A hostile server could send huge parameters (memory exhaustion) or tiny
    // ones (cheap brute force of the auth key it receives); refuse both.
    if !params.is_acceptable(&MIN_PARAMS) {
        return Err(CryptoError::KdfParams);
    }
    if !(MIN_SALT_LEN..=MAX_SALT_LEN).contains(&salt.len()) {
        return Err(CryptoError::KdfSalt);
    }
    let algorithm = match params.alg {
        KdfAlg::Argon2id => Algorithm::Argon2id,
    };
    let argon_params = Params::new(
        params.m_cost_kib,
        params.t_cost,
        params.p_cost,
        Some(KEY_LEN),
    )
    .map_err(|_| CryptoError::KdfParams)?;
    let mut master = Zeroizing::new([0u8; KEY_LEN]);
    Argon2::new(algorithm, Version::V0x13, argon_params)
        .hash_password_into(password, salt, master.as_mut_slice())
        .map_err(|_| CryptoError::Kdf)?;

    // The master key is already uniformly random, so no HKDF salt is needed.
    let hkdf = Hkdf::<Sha256>::new(None, master.as_slice());
    let mut auth_key = AuthKey([0u8; KEY_LEN]);
    let mut wrap_key = WrapKey([0u8; KEY_LEN]);
    hkdf.expand(AUTH_KEY_INFO, &mut auth_key.0)
        .map_err(|_| CryptoError::Kdf)?;
    hkdf.expand(WRAP_KEY_INFO, &mut wrap_key.0)
        .map_err(|_| CryptoError::Kdf)?;
    Ok(AccountKeys { auth_key, wrap_key })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::crypto::test_support::seeded_rng;

    /// Cheap parameters: the floor itself.
    const CHEAP: KdfParams = MIN_PARAMS;
    const SALT: [u8; 16] = *b"ferrogram-salt16";

    #[test]
    fn known_answer_vector() {
        // Frozen: a change here means every existing account can no longer
        // log in. Cross-checked with Python `cryptography` (Argon2id, then
        // HKDF-SHA256 with no salt and the two info labels).
        let keys = derive_account_keys(b"correct horse battery staple", &SALT, &CHEAP).unwrap();
        assert_eq!(
            hex::encode(keys.auth_key.as_bytes()),
            "0a1a687c82a52aba3cf161e2fc3f2ef4132d93c33d44daf88baad39fecc53760"
        );
        assert_eq!(
            hex::encode(keys.wrap_key.as_bytes()),
            "f1cf2fcaf372c6011b7e0b8cb4aad11de81ca745f833ef36d7f8247d33a8c0ea"
        );
    }

    #[test]
    fn auth_and_wrap_keys_differ_and_depend_on_every_input() {
        let base = derive_account_keys(b"pw", &SALT, &CHEAP).unwrap();
        assert_ne!(base.auth_key.as_bytes(), base.wrap_key.as_bytes());

        let other_password = derive_account_keys(b"pw2", &SALT, &CHEAP).unwrap();
        let other_salt = derive_account_keys(b"pw", &[7u8; 16], &CHEAP).unwrap();
        let more_passes = KdfParams { t_cost: 2, ..CHEAP };
        let other_params = derive_account_keys(b"pw", &SALT, &more_passes).unwrap();
        for other in [other_password, other_salt, other_params] {
            assert_ne!(base.auth_key.as_bytes(), other.auth_key.as_bytes());
            assert_ne!(base.wrap_key.as_bytes(), other.wrap_key.as_bytes());
        }

        let again = derive_account_keys(b"pw", &SALT, &CHEAP).unwrap();
        assert_eq!(base.auth_key.as_bytes(), again.auth_key.as_bytes());
    }

    #[test]
    fn rejects_weak_or_excessive_params() {
        let too_little_memory = KdfParams {
            m_cost_kib: 32,
            ..CHEAP
        };
        let too_many_passes = KdfParams {
            t_cost: KdfParams::MAX_T_COST + 1,
            ..CHEAP
        };
        let too_much_memory = KdfParams {
            m_cost_kib: KdfParams::MAX_M_COST_KIB + 1,
            ..CHEAP
        };
        let no_passes = KdfParams { t_cost: 0, ..CHEAP };
        for params in [
            too_little_memory,
            too_many_passes,
            too_much_memory,
            no_passes,
        ] {
            assert_eq!(
                derive_account_keys(b"pw", &SALT, &params).unwrap_err(),
                CryptoError::KdfParams
            );
        }
    }

    #[test]
    fn rejects_short_or_long_salt() {
        for len in [0, 8, 15, 65] {
            let salt = vec![1u8; len];
            assert_eq!(
                derive_account_keys(b"pw", &salt, &CHEAP).unwrap_err(),
                CryptoError::KdfSalt
            );
        }
    }

    #[test]
    fn random_salt_comes_from_the_rng() {
        let a = random_salt(&mut seeded_rng(1));
        let b = random_salt(&mut seeded_rng(1));
        let c = random_salt(&mut seeded_rng(2));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn debug_never_prints_key_bytes() {
        let keys = AccountKeys {
            auth_key: AuthKey::from_bytes([0xAB; KEY_LEN]),
            wrap_key: WrapKey::from_bytes([0xCD; KEY_LEN]),
        };
        assert_eq!(
            format!("{keys:?}"),
            "AccountKeys { auth_key: AuthKey(<redacted>), wrap_key: WrapKey(<redacted>) }"
        );
    }

    #[test]
    fn auth_key_travels_as_base64_of_its_bytes() {
        let key = AuthKey::from_bytes([9; KEY_LEN]);
        assert_eq!(key.to_b64().as_slice(), &[9u8; KEY_LEN]);
    }
}
