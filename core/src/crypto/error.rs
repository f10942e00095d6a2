//! The error type of the key, sealing and public-key operations.
//!
//! Failures to open sealed data are deliberately one variant with no detail, so
//! a caller (or an attacker probing one) cannot tell a wrong key from a
//! tampered or truncated blob.

use crate::error::ErrorCode;

/// Which of an account's two keys a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// The RSA-PSS signing key.
    Sign,
    /// The RSA-OAEP encryption key.
    Enc,
}

impl std::fmt::Display for KeyRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyRole::Sign => "signing key",
            KeyRole::Enc => "encryption key",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The KDF parameters are below the floor or above the client-side maxima.
    #[error("key derivation parameters are outside the accepted range")]
    KdfParams,
    #[error("key derivation salt must be {min} to {max} bytes", min = crate::crypto::kdf::MIN_SALT_LEN, max = crate::crypto::kdf::MAX_SALT_LEN)]
    KdfSalt,
    /// Argon2 refused to run (out of memory, for instance).
    #[error("key derivation failed")]
    Kdf,
    #[error("key generation failed")]
    KeyGeneration,
    /// A serialized identity (after it was opened) is not one this version reads.
    #[error("malformed identity key container")]
    MalformedIdentity,
    /// Encoding a key or signing failed: a bug or an exhausted system, never bad input.
    #[error("private-key operation failed")]
    PrivateKeyOperation,
    /// Sealed data could not be opened: wrong key, tampered, truncated or an
    /// unknown format. Intentionally says no more.
    #[error("could not open sealed data")]
    Open,
    #[error("could not seal data")]
    Seal,
    /// A public key a peer or client supplied is not acceptable.
    #[error("invalid {role}: {reason}")]
    InvalidPublicKey { role: KeyRole, reason: &'static str },
    /// Both public keys together exceed the size limit.
    #[error("public keys are too large")]
    PublicKeysTooLarge,
}

impl CryptoError {
    /// The stable API error code a server answers with when this error comes
    /// from a client's input.
    pub fn code(&self) -> ErrorCode {
        match self {
            CryptoError::KdfParams | CryptoError::KdfSalt => ErrorCode::InvalidKdfParams,
            CryptoError::InvalidPublicKey { .. } | CryptoError::PublicKeysTooLarge => {
                ErrorCode::InvalidKey
            }
            CryptoError::Kdf
            | CryptoError::KeyGeneration
            | CryptoError::MalformedIdentity
            | CryptoError::PrivateKeyOperation
            | CryptoError::Open
            | CryptoError::Seal => ErrorCode::Internal,
        }
    }
}
