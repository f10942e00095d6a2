//! Secrets at rest: AES-256-GCM under the account's `wrap_key`.
//!
//! Blob layout: `version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)`.
//! The associated data is the version byte followed by a fixed label naming
//! what the blob holds, so a blob sealed for one purpose cannot be opened as
//! another, and the version cannot be changed without detection.
//!
//! Nonces are random. With 96 bits, a key can seal about 2^32 blobs before a
//! collision becomes a concern; a wrap key seals a handful in its lifetime.

use super::identity::Identity;
use super::kdf::WrapKey;
use super::CryptoError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

/// Format version of sealed blobs.
pub const SEALED_VERSION: u8 = 1;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// Smallest possible blob: version, nonce and tag around an empty plaintext.
pub const MIN_SEALED_LEN: usize = 1 + NONCE_LEN + TAG_LEN;
/// Label of the blob holding an account's private keys (`sealed_keys` on the wire).
pub const IDENTITY_LABEL: &[u8] = b"ferrogram/v1/sealed-identity";

/// Seals `plaintext` under `wrap_key`; `label` names what it is and must be
/// given again to open it.
pub fn seal_bytes(
    wrap_key: &WrapKey,
    label: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_with_nonce(wrap_key.as_bytes(), label, &nonce, plaintext)
}

/// Opens what `seal_bytes` sealed with the same key and label. Every failure
/// is the same `CryptoError::Open`.
pub fn open_bytes(
    wrap_key: &WrapKey,
    label: &[u8],
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (&version, rest) = blob.split_first().ok_or(CryptoError::Open)?;
    if version != SEALED_VERSION || rest.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Open);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Open)?;
    aead_decrypt(
        wrap_key.as_bytes(),
        nonce,
        &associated_data(label),
        ciphertext,
    )
}

/// Seals an account's private keys for storage on the server.
pub fn seal_identity(
    identity: &Identity,
    wrap_key: &WrapKey,
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, CryptoError> {
    let plaintext = identity.to_bytes()?;
    seal_bytes(wrap_key, IDENTITY_LABEL, &plaintext, rng)
}

/// Opens the blob `seal_identity` made. A wrong password (so a wrong wrap key)
/// and a tampered blob both give `CryptoError::Open`.
pub fn open_identity(blob: &[u8], wrap_key: &WrapKey) -> Result<Identity, CryptoError> {
    let plaintext = open_bytes(wrap_key, IDENTITY_LABEL, blob)?;
    Identity::from_bytes(&plaintext)
}

fn associated_data(label: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + label.len());
    aad.push(SEALED_VERSION);
    aad.extend_from_slice(label);
    aad
}

fn seal_with_nonce(
    key: &[u8; 32],
    label: &[u8],
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let ciphertext = aead_encrypt(key, nonce, &associated_data(label), plaintext)?;
    let mut blob = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    blob.push(SEALED_VERSION);
    blob.extend_from_slice(nonce);
    blob.extend_from_slice(&ciphertext);
    Ok(blob)
}

/// AES-256-GCM encryption; returns ciphertext followed by the 16-byte tag.
pub(crate) fn aead_encrypt(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new(&(*key).into());
    cipher
        .encrypt(
            &(*nonce).into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Seal)
}

/// AES-256-GCM decryption; any failure is `CryptoError::Open`.
pub(crate) fn aead_decrypt(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let cipher = Aes256Gcm::new(&(*key).into());
    cipher
        .decrypt(
            &(*nonce).into(),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Open)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::crypto::test_support::{fixture_identity, generated_identity, seeded_rng};

    const LABEL: &[u8] = b"ferrogram/test/label";

    fn key(byte: u8) -> WrapKey {
        WrapKey::from_bytes([byte; 32])
    }

    #[test]
    fn bytes_round_trip_for_several_lengths() {
        let mut rng = seeded_rng(10);
        for len in [0usize, 1, 15, 16, 17, 1000] {
            let plaintext: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let blob = seal_bytes(&key(1), LABEL, &plaintext, &mut rng).unwrap();
            assert_eq!(blob.len(), MIN_SEALED_LEN + len);
            assert_eq!(
                open_bytes(&key(1), LABEL, &blob).unwrap().as_slice(),
                plaintext
            );
        }
    }

    #[test]
    fn sealing_twice_gives_different_blobs() {
        let mut rng = seeded_rng(11);
        let a = seal_bytes(&key(1), LABEL, b"same", &mut rng).unwrap();
        let b = seal_bytes(&key(1), LABEL, b"same", &mut rng).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn flipping_any_byte_fails_to_open() {
        let blob = seal_bytes(&key(1), LABEL, b"secret private keys", &mut seeded_rng(12)).unwrap();
        for position in 0..blob.len() {
            for flip in [0x01, 0x80] {
                let mut tampered = blob.clone();
                tampered[position] ^= flip;
                assert_eq!(
                    open_bytes(&key(1), LABEL, &tampered).unwrap_err(),
                    CryptoError::Open,
                    "byte {position} flipped with {flip:#x}"
                );
            }
        }
    }

    #[test]
    fn truncated_or_extended_blobs_fail_to_open() {
        let blob = seal_bytes(&key(1), LABEL, b"secret", &mut seeded_rng(13)).unwrap();
        for len in 0..blob.len() {
            assert_eq!(
                open_bytes(&key(1), LABEL, &blob[..len]).unwrap_err(),
                CryptoError::Open
            );
        }
        let mut extended = blob.clone();
        extended.push(0);
        assert_eq!(
            open_bytes(&key(1), LABEL, &extended).unwrap_err(),
            CryptoError::Open
        );
    }

    #[test]
    fn wrong_key_or_label_fails_to_open() {
        let blob = seal_bytes(&key(1), LABEL, b"secret", &mut seeded_rng(14)).unwrap();
        assert_eq!(
            open_bytes(&key(2), LABEL, &blob).unwrap_err(),
            CryptoError::Open
        );
        assert_eq!(
            open_bytes(&key(1), IDENTITY_LABEL, &blob).unwrap_err(),
            CryptoError::Open
        );
    }

    /// Freezes the blob format: a fixed key, nonce and plaintext must give
    /// exactly these bytes, and these bytes must keep opening. Cross-checked
    /// with Python `cryptography`'s AESGCM.
    #[test]
    fn golden_sealed_blob() {
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let nonce: [u8; NONCE_LEN] = core::array::from_fn(|i| 0xA0 + i as u8);
        let plaintext = b"Ferrogram sealed blob test vector";
        let golden = concat!(
            "01",                       // version
            "a0a1a2a3a4a5a6a7a8a9aaab", // nonce
            "a07d0e5f2aac70de0f45f4b66616a5ba50ce357ff0973609ef7a06f01ac8016ea0",
            "e324cb0271ec972f0096c369feab5a9f", // tag
        );
        let blob = seal_with_nonce(&key, IDENTITY_LABEL, &nonce, plaintext).unwrap();
        assert_eq!(hex::encode(&blob), golden);
        let opened = open_bytes(
            &WrapKey::from_bytes(key),
            IDENTITY_LABEL,
            &hex::decode(golden).unwrap(),
        )
        .unwrap();
        assert_eq!(opened.as_slice(), plaintext);
    }

    #[test]
    fn identity_round_trips_through_a_sealed_blob() {
        let identity = generated_identity();
        let wrap_key = key(7);
        let blob = seal_identity(identity, &wrap_key, &mut seeded_rng(15)).unwrap();
        let opened = open_identity(&blob, &wrap_key).unwrap();
        assert_eq!(opened.public_keys(), identity.public_keys());
    }

    #[test]
    fn identity_blob_refuses_a_wrong_key_and_tampering() {
        let identity = fixture_identity(1);
        let blob = seal_identity(identity, &key(7), &mut seeded_rng(16)).unwrap();
        assert_eq!(
            open_identity(&blob, &key(8)).unwrap_err(),
            CryptoError::Open
        );
        // Every position: header, nonce, ciphertext and tag.
        let mut tampered = blob.clone();
        for position in 0..blob.len() {
            tampered[position] ^= 0x10;
            assert_eq!(
                open_identity(&tampered, &key(7)).unwrap_err(),
                CryptoError::Open,
                "byte {position}"
            );
            tampered[position] ^= 0x10;
        }
    }

    #[test]
    fn a_blob_sealed_for_something_else_is_not_an_identity() {
        let blob = seal_bytes(&key(7), LABEL, b"not keys", &mut seeded_rng(17)).unwrap();
        assert_eq!(
            open_identity(&blob, &key(7)).unwrap_err(),
            CryptoError::Open
        );
    }
}
