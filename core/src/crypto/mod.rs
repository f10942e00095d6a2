//! End-to-end crypto for Ferrogram: password key derivation, the account's RSA
//! identity, sealing secrets at rest, the message envelope, key fingerprints
//! and safety numbers, and the server's checks of public keys and envelopes.
//!
//! Private-key operations (signing, decrypting) happen only on clients, on the
//! user's own keys: the `rsa` crate's private operations are not constant time
//! (RUSTSEC-2023-0071). Everything a server may call (`validate_public_keys`,
//! `fingerprint`, `envelope::verify_structure`, `envelope::verify_signature`)
//! uses public keys only.
//!
//! Every function that needs randomness takes `&mut impl CryptoRng`, so tests
//! run with a seeded generator and production code passes the OS generator.

// A panic in crypto code is a denial of service at best; every failure is an error value.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod encode;
pub mod envelope;
mod error;
pub mod fingerprint;
pub mod identity;
pub mod kdf;
pub mod sealed;
mod spki;
pub mod wrap_tree;

#[cfg(test)]
mod test_support;

pub use envelope::EnvelopeError;
pub use error::{CryptoError, KeyRole};
pub use fingerprint::{fingerprint, fingerprints_match, safety_number, validate_public_keys};
pub use identity::{Identity, RSA_BITS};
pub use kdf::{derive_account_keys, random_salt, AccountKeys, AuthKey, WrapKey};
pub use sealed::{open_bytes, open_identity, seal_bytes, seal_identity};
