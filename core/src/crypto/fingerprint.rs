//! What a person compares to know they talk to the right account, and the
//! server's check that published public keys are sane.
//!
//! A fingerprint is SHA-256 over a domain label and both SPKI DERs, each
//! length-prefixed, shown as 16 groups of 4 uppercase hex digits. It commits to
//! both keys: replacing either changes it.
//!
//! A safety number is what two people compare to check each other at once:
//! one 60-digit number for the pair, the same on both sides.

use super::encode::Canonical;
use super::{spki, CryptoError, KeyRole};
use crate::proto::PublicKeys;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

pub use super::spki::{MAX_RSA_BITS, MAX_SPKI_DER_LEN, MIN_RSA_BITS};

const FINGERPRINT_DOMAIN: &[u8] = b"ferrogram/v1/fingerprint";
const SAFETY_NUMBER_DOMAIN: &[u8] = b"ferrogram/v1/safety-number";
/// Groups of 5 digits in a safety number; each comes from 5 hash bytes.
const SAFETY_NUMBER_GROUPS: usize = 12;
/// Both keys together: two 4096-bit SPKIs with room to spare.
pub const MAX_PUBLIC_KEYS_LEN: usize = 2 * MAX_SPKI_DER_LEN;

/// The raw 32-byte fingerprint (used as a key id inside envelopes).
pub fn fingerprint_bytes(keys: &PublicKeys) -> [u8; 32] {
    let mut encoding = Canonical::new(FINGERPRINT_DOMAIN);
    encoding
        .bytes(keys.sign.as_slice())
        .bytes(keys.enc.as_slice());
    Sha256::digest(encoding.finish()).into()
}

/// The fingerprint as people read it: `"1A2B 3C4D ..."`, 16 groups of 4.
pub fn fingerprint(keys: &PublicKeys) -> String {
    let hex = hex::encode_upper(fingerprint_bytes(keys));
    let mut grouped = String::with_capacity(hex.len() + hex.len() / 4);
    for (i, digit) in hex.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            grouped.push(' ');
        }
        grouped.push(digit);
    }
    grouped
}

/// The safety number of two accounts: 12 groups of 5 digits, the same
/// whichever of the two computes it.
///
/// SHA-512 over both fingerprints in sorted order (hence order-independent);
/// each 5-byte slice of the digest, read as a number modulo 100000, gives one
/// group. The modulo bias is below 2^-23 per group. 60 digits carry about 199
/// bits: no one can make a key pair that matches a given safety number.
pub fn safety_number(a: &PublicKeys, b: &PublicKeys) -> String {
    let (a, b) = (fingerprint_bytes(a), fingerprint_bytes(b));
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut encoding = Canonical::new(SAFETY_NUMBER_DOMAIN);
    encoding.bytes(&low).bytes(&high);
    let digest = Sha512::digest(encoding.finish());
    digest
        .chunks_exact(5)
        .take(SAFETY_NUMBER_GROUPS)
        .map(|chunk| {
            let value = chunk
                .iter()
                .fold(0u64, |value, &byte| value << 8 | u64::from(byte));
            format!("{:05}", value % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Compares two fingerprints (or any two strings) in constant time, so a pinned
/// fingerprint check does not leak how much of it matched.
pub fn fingerprints_match(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The server's check of public keys a client publishes (at registration):
/// both parse as DER SPKI RSA keys of the right role, 3072 to 4096 bits,
/// exponent 65537, canonically encoded, distinct, within the size limits.
/// Uses public information only; never a private-key operation.
pub fn validate_public_keys(keys: &PublicKeys) -> Result<(), CryptoError> {
    if keys.sign.len() + keys.enc.len() > MAX_PUBLIC_KEYS_LEN {
        return Err(CryptoError::PublicKeysTooLarge);
    }
    let sign = spki::decode(keys.sign.as_slice(), KeyRole::Sign)?;
    let enc = spki::decode(keys.enc.as_slice(), KeyRole::Enc)?;
    // One RSA key used both to sign and to decrypt invites cross-protocol attacks.
    if sign == enc {
        return Err(CryptoError::InvalidPublicKey {
            role: KeyRole::Enc,
            reason: "must differ from the signing key",
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::b64::B64;
    use crate::crypto::test_support::{fixture_identity, seeded_rng};
    use rsa::pkcs8::EncodePublicKey;

    fn invalid_reason(result: Result<(), CryptoError>) -> (KeyRole, &'static str) {
        match result {
            Err(CryptoError::InvalidPublicKey { role, reason }) => (role, reason),
            other => panic!("expected InvalidPublicKey, got {other:?}"),
        }
    }

    #[test]
    fn fingerprint_is_16_groups_of_4_uppercase_hex() {
        let printed = fixture_identity(0).fingerprint();
        let groups: Vec<&str> = printed.split(' ').collect();
        assert_eq!(groups.len(), 16);
        assert!(groups.iter().all(|g| g.len() == 4
            && g.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())));
    }

    #[test]
    fn fingerprint_known_answer() {
        // Frozen: clients pin these. Cross-checked with Python hashlib over
        // the same length-prefixed encoding.
        let keys = PublicKeys {
            sign: B64(b"sign".to_vec()),
            enc: B64(b"enc".to_vec()),
        };
        assert_eq!(
            fingerprint(&keys),
            "9FAB 59C6 710C D9BE 5665 F88A 7BFB 70BA D70F 9EC9 8819 74C0 0600 19A9 ED6E 8998"
        );
    }

    #[test]
    fn fingerprint_commits_to_both_keys_and_their_order() {
        let a = fixture_identity(0).public_keys();
        let b = fixture_identity(1).public_keys();
        let mixed = PublicKeys {
            sign: a.sign.clone(),
            enc: b.enc.clone(),
        };
        let swapped = PublicKeys {
            sign: a.enc.clone(),
            enc: a.sign.clone(),
        };
        let all = [&a, &b, &mixed, &swapped].map(fingerprint);
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j]);
            }
        }
    }

    #[test]
    fn safety_number_is_order_independent_12_groups_of_5_digits() {
        let a = fixture_identity(0).public_keys();
        let b = fixture_identity(1).public_keys();
        let number = safety_number(&a, &b);
        assert_eq!(number, safety_number(&b, &a));
        let groups: Vec<&str> = number.split(' ').collect();
        assert_eq!(groups.len(), 12);
        assert!(groups
            .iter()
            .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit())));
        // A changed key on either side changes it.
        let c = fixture_identity(2).public_keys();
        assert_ne!(number, safety_number(&a, &c));
        assert_ne!(number, safety_number(&c, &b));
    }

    #[test]
    fn safety_number_known_answer() {
        // Frozen: people compare these. Cross-checked with Python hashlib.
        let a = PublicKeys {
            sign: B64(b"sign-a".to_vec()),
            enc: B64(b"enc-a".to_vec()),
        };
        let b = PublicKeys {
            sign: B64(b"sign-b".to_vec()),
            enc: B64(b"enc-b".to_vec()),
        };
        assert_eq!(
            safety_number(&a, &b),
            "16664 52287 81649 10192 05135 91465 86494 44513 18167 20186 94133 99646"
        );
    }

    #[test]
    fn fingerprints_match_compares_exactly() {
        let f = fixture_identity(0).fingerprint();
        assert!(fingerprints_match(&f, &f.clone()));
        assert!(!fingerprints_match(&f, &fixture_identity(1).fingerprint()));
        assert!(!fingerprints_match(&f, &f[..f.len() - 1]));
    }

    #[test]
    fn accepts_real_keys() {
        validate_public_keys(&fixture_identity(0).public_keys()).unwrap();
    }

    #[test]
    fn rejects_garbage_and_empty() {
        for garbage in [
            vec![],
            vec![0u8; 10],
            b"-----BEGIN PUBLIC KEY-----".to_vec(),
        ] {
            let mut keys = fixture_identity(0).public_keys();
            keys.sign = B64(garbage.clone());
            assert_eq!(invalid_reason(validate_public_keys(&keys)).0, KeyRole::Sign);
            let mut keys = fixture_identity(0).public_keys();
            keys.enc = B64(garbage);
            assert_eq!(invalid_reason(validate_public_keys(&keys)).0, KeyRole::Enc);
        }
    }

    #[test]
    fn rejects_swapped_keys() {
        let keys = fixture_identity(0).public_keys();
        let swapped = PublicKeys {
            sign: keys.enc,
            enc: keys.sign,
        };
        let (role, reason) = invalid_reason(validate_public_keys(&swapped));
        assert_eq!(role, KeyRole::Sign);
        assert!(reason.contains("wrong algorithm"), "{reason}");
    }

    #[test]
    fn rejects_the_same_key_twice() {
        let keys = fixture_identity(0).public_keys();
        let enc_key = spki::decode(keys.enc.as_slice(), KeyRole::Enc).unwrap();
        let twice = PublicKeys {
            sign: B64(spki::encode(&enc_key, KeyRole::Sign).unwrap()),
            enc: keys.enc,
        };
        assert_eq!(
            invalid_reason(validate_public_keys(&twice)),
            (KeyRole::Enc, "must differ from the signing key")
        );
    }

    #[test]
    fn rejects_truncated_and_padded_der() {
        let keys = fixture_identity(0).public_keys();
        for cut in [1, 10, keys.enc.len() / 2] {
            let mut truncated = keys.clone();
            truncated.enc = B64(keys.enc.as_slice()[..keys.enc.len() - cut].to_vec());
            invalid_reason(validate_public_keys(&truncated));
        }
        let mut trailing = keys.clone();
        trailing.enc.0.push(0);
        invalid_reason(validate_public_keys(&trailing));
    }

    #[test]
    fn rejects_2048_bit_keys() {
        let small = rsa::PrivateKey::new(&mut seeded_rng(20), 2048).unwrap();
        let mut keys = fixture_identity(0).public_keys();
        keys.enc = B64(spki::encode(small.as_public_key(), KeyRole::Enc).unwrap());
        assert_eq!(
            invalid_reason(validate_public_keys(&keys)),
            (KeyRole::Enc, "modulus must be 3072 to 4096 bits")
        );
    }

    #[test]
    fn rejects_a_signing_key_without_its_pss_label() {
        // What a client would send if it published the plain rsaEncryption SPKI.
        let keys = fixture_identity(0).public_keys();
        let sign_key = spki::decode(keys.sign.as_slice(), KeyRole::Sign).unwrap();
        let mut relabelled = keys.clone();
        relabelled.sign = B64(sign_key.to_public_key_der().unwrap().as_bytes().to_vec());
        assert_eq!(
            invalid_reason(validate_public_keys(&relabelled)).0,
            KeyRole::Sign
        );
    }

    #[test]
    fn rejects_oversized_input() {
        let mut keys = fixture_identity(0).public_keys();
        keys.enc = B64(vec![0x30; MAX_PUBLIC_KEYS_LEN]);
        assert_eq!(
            validate_public_keys(&keys),
            Err(CryptoError::PublicKeysTooLarge)
        );
    }
}
