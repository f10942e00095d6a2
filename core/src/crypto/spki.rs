//! How an account's public keys look on the wire (DER SubjectPublicKeyInfo)
//! and the policy every public key must meet.
//!
//! The signing key is labelled with the id-RSASSA-PSS algorithm identifier
//! (RFC 4055, no parameters) and the encryption key with rsaEncryption. The
//! label says what a key is for, so a client or server can tell the two apart:
//! swapped keys are rejected instead of silently used for the wrong job.

use super::{CryptoError, KeyRole};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::der::asn1::BitStringRef;
use rsa::pkcs8::der::{Decode, Encode};
use rsa::pkcs8::{
    AlgorithmIdentifierRef, DecodePublicKey, ObjectIdentifier, SubjectPublicKeyInfoRef,
};
use rsa::traits::PublicKeyParts;

/// Smallest accepted modulus in bits (what `Identity::generate` makes).
pub const MIN_RSA_BITS: u32 = 3072;
/// Largest accepted modulus in bits: bounds the cost of every public operation.
pub const MAX_RSA_BITS: u32 = 4096;
/// The only accepted public exponent, big-endian (65537).
const EXPONENT_65537: [u8; 3] = [0x01, 0x00, 0x01];
/// A 4096-bit SPKI is about 550 bytes; anything much larger is not one of ours.
pub const MAX_SPKI_DER_LEN: usize = 1024;

const ID_RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");

fn algorithm_oid(role: KeyRole) -> ObjectIdentifier {
    match role {
        KeyRole::Sign => ID_RSASSA_PSS,
        KeyRole::Enc => rsa::pkcs1::ALGORITHM_OID,
    }
}

/// Encodes a public key as DER SPKI with the algorithm identifier of its role.
pub(crate) fn encode(key: &rsa::PublicKey, role: KeyRole) -> Result<Vec<u8>, CryptoError> {
    let failed = |_| CryptoError::PrivateKeyOperation;
    let pkcs1 = key.to_pkcs1_der().map_err(failed)?;
    let algorithm = match role {
        KeyRole::Sign => AlgorithmIdentifierRef {
            oid: ID_RSASSA_PSS,
            parameters: None,
        },
        KeyRole::Enc => rsa::pkcs1::ALGORITHM_ID,
    };
    let spki = SubjectPublicKeyInfoRef {
        algorithm,
        subject_public_key: BitStringRef::new(0, pkcs1.as_bytes())
            .map_err(|_| CryptoError::PrivateKeyOperation)?,
    };
    spki.to_der().map_err(|_| CryptoError::PrivateKeyOperation)
}

/// Checks the size and exponent policy of a parsed key.
pub(crate) fn check_policy(key: &impl PublicKeyParts, role: KeyRole) -> Result<(), CryptoError> {
    let bits = key.n().bit_width_vartime();
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(CryptoError::InvalidPublicKey {
            role,
            reason: "modulus must be 3072 to 4096 bits",
        });
    }
    if *key.e_bytes() != EXPONENT_65537 {
        return Err(CryptoError::InvalidPublicKey {
            role,
            reason: "public exponent must be 65537",
        });
    }
    Ok(())
}

/// Parses one DER SPKI and checks it against the policy for `role`. Public
/// information only: safe on a server.
pub(crate) fn decode(der: &[u8], role: KeyRole) -> Result<rsa::PublicKey, CryptoError> {
    let invalid = |reason| CryptoError::InvalidPublicKey { role, reason };
    if der.len() > MAX_SPKI_DER_LEN {
        return Err(invalid("too large"));
    }
    let spki =
        SubjectPublicKeyInfoRef::from_der(der).map_err(|_| invalid("not a DER public key"))?;
    if spki.algorithm.oid != algorithm_oid(role) {
        return Err(invalid("wrong algorithm (keys swapped or not RSA)"));
    }
    let key = rsa::PublicKey::from_public_key_der(der).map_err(|_| invalid("not an RSA key"))?;
    check_policy(&key, role)?;
    // DER has exactly one encoding per key, but parsers can be lenient; insist
    // on ours so a fingerprint identifies a key, not one of its spellings.
    if encode(&key, role).map_err(|_| invalid("not an RSA key"))? != der {
        return Err(invalid("not canonically encoded"));
    }
    Ok(key)
}
