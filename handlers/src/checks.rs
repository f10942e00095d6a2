//! Checks of the key material a client sends (the profile fields are checked
//! by `ferrogram_core::validate`).

use crate::Settings;
use ferrogram_core::b64::B64;
use ferrogram_core::crypto::fingerprint::validate_public_keys;
use ferrogram_core::proto::{KdfParams, PublicKeys};
use ferrogram_core::{ApiError, ErrorCode};

/// Length of the client's `auth_key` (an HKDF output).
pub(crate) const AUTH_KEY_BYTES: usize = 32;
pub(crate) const MIN_SALT_BYTES: usize = 16;
pub(crate) const MAX_SALT_BYTES: usize = 64;
/// Two sealed RSA-3072 private keys take about 5 KiB; 16 KiB leaves room for
/// 4096-bit keys and format growth without letting accounts store blobs.
pub(crate) const MAX_SEALED_KEYS_BYTES: usize = 16 * 1024;

pub(crate) fn auth_key(key: &B64) -> Result<(), ApiError> {
    if key.len() == AUTH_KEY_BYTES {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidKey,
            "auth_key must be exactly 32 bytes",
        ))
    }
}

/// The client's KDF salt and parameters for a new password.
pub(crate) fn kdf(salt: &B64, params: &KdfParams, settings: &Settings) -> Result<(), ApiError> {
    if !(MIN_SALT_BYTES..=MAX_SALT_BYTES).contains(&salt.len()) {
        return Err(ApiError::new(
            ErrorCode::InvalidKdfParams,
            "kdf_salt must be 16 to 64 bytes",
        ));
    }
    if !params.is_acceptable(&settings.min_kdf) {
        let min = settings.min_kdf;
        return Err(ApiError::new(
            ErrorCode::InvalidKdfParams,
            format!(
                "kdf parameters must be at least m={} KiB, t={}, p={} and within the client limits",
                min.m_cost_kib, min.t_cost, min.p_cost
            ),
        ));
    }
    Ok(())
}

pub(crate) fn sealed_keys(blob: &B64) -> Result<(), ApiError> {
    if blob.is_empty() || blob.len() > MAX_SEALED_KEYS_BYTES {
        return Err(ApiError::new(
            ErrorCode::InvalidKey,
            format!("sealed_keys must be 1 to {MAX_SEALED_KEYS_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Structure and policy of the published keys (public operations only).
pub(crate) fn public_keys(keys: &PublicKeys) -> Result<(), ApiError> {
    // The crypto error message names the key and the rule, nothing secret.
    validate_public_keys(keys).map_err(|e| ApiError::new(e.code(), e.to_string()))
}
