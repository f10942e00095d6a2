//! Random tokens and codes, and the hashes under which they are stored.
//!
//! Session and link tokens are 256-bit random values, so plain SHA-256 is
//! enough to store them: nobody can search that space. Verification codes have
//! only 10^6 values, so a plain hash would fall to a brute force by anyone who
//! reads the database; they are stored as HMAC-SHA256 under the server secret
//! (kept in the data folder, not the database) instead. Everything compared
//! against client input is compared in constant time.

use base64::Engine as _;
use ferrogram_core::ids::{SessionId, UserId};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of a session or link token before encoding.
const TOKEN_BYTES: usize = 32;
/// Base64url without padding of 32 bytes.
pub(crate) const TOKEN_CHARS: usize = 43;
/// Length of a verification code.
pub(crate) const CODE_DIGITS: usize = 6;
/// Length of the fake pre-login salt, the same as the clients' salts.
pub(crate) const FAKE_SALT_BYTES: usize = 16;

// Domain labels keep each keyed hash separate even though they share the key.
const LABEL_FAKE_SALT: &[u8] = b"ferrogram/v1/prelogin-fake-salt\0";
const LABEL_CODE: &[u8] = b"ferrogram/v1/verification-code\0";
const LABEL_EMAIL_KEY: &[u8] = b"ferrogram/v1/resend-cooldown\0";

/// `rand::rng()` is a ChaCha12 generator seeded from the OS and periodically
/// reseeded: a CSPRNG suitable for tokens.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill(&mut bytes[..]);
    bytes
}

/// A new bearer or link token: 256 random bits, base64url without padding.
pub(crate) fn new_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<TOKEN_BYTES>())
}

/// Whether `token` has the shape of one of our tokens (length and alphabet).
pub(crate) fn is_well_formed_token(token: &str) -> bool {
    token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new public session id: 128 random bits as 32 hex characters.
pub(crate) fn new_session_id() -> SessionId {
    SessionId(hex::encode(random_bytes::<16>()))
}

/// A uniformly random 6-digit code (leading zeros included).
pub(crate) fn new_code() -> String {
    // random_range samples without modulo bias.
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

pub(crate) fn is_well_formed_code(code: &str) -> bool {
    code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The stored form of a verification code: bound to the account, so a code
/// hash copied to another row is useless.
pub(crate) fn code_hash(server_secret: &[u8], user_id: UserId, code: &str) -> [u8; 32] {
    hmac_sha256(
        server_secret,
        &[LABEL_CODE, &user_id.0.to_be_bytes(), code.as_bytes()],
    )
}

/// The pre-login salt for an email without an account: stable for the same
/// email across calls and restarts (same server secret), different per email,
/// and unpredictable without the secret, so it looks like a real salt.
pub(crate) fn fake_salt(server_secret: &[u8], email: &str) -> [u8; FAKE_SALT_BYTES] {
    let full = hmac_sha256(server_secret, &[LABEL_FAKE_SALT, email.as_bytes()]);
    let mut salt = [0u8; FAKE_SALT_BYTES];
    salt.copy_from_slice(&full[..FAKE_SALT_BYTES]);
    salt
}

/// The key under which the resend cooldown of an address is stored, so that
/// addresses without an account are not kept in clear.
pub(crate) fn email_key(server_secret: &[u8], email: &str) -> [u8; 32] {
    hmac_sha256(server_secret, &[LABEL_EMAIL_KEY, email.as_bytes()])
}

/// Constant-time equality (lengths are not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_are_43_base64url_chars_and_distinct() {
        let tokens: HashSet<String> = (0..100).map(|_| new_token()).collect();
        assert_eq!(tokens.len(), 100);
        assert!(tokens.iter().all(|t| is_well_formed_token(t)));
        assert!(!is_well_formed_token("short"));
        assert!(!is_well_formed_token(&"+".repeat(TOKEN_CHARS)));
        assert!(!is_well_formed_token(&"a".repeat(TOKEN_CHARS + 1)));
    }

    #[test]
    fn session_ids_are_32_hex_chars() {
        let id = new_session_id();
        assert_eq!(id.0.len(), 32);
        assert!(id.0.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, new_session_id());
    }

    #[test]
    fn codes_are_six_digits_and_cover_the_range() {
        let mut first_digits = HashSet::new();
        for _ in 0..2000 {
            let code = new_code();
            assert!(is_well_formed_code(&code), "{code}");
            first_digits.insert(code.as_bytes()[0]);
        }
        // leading zeros are kept, and every leading digit occurs
        assert_eq!(first_digits.len(), 10);
        assert!(!is_well_formed_code("12345"));
        assert!(!is_well_formed_code("12345a"));
        assert!(!is_well_formed_code("１２３４５６"));
    }

    #[test]
    fn keyed_hashes_depend_on_every_input() {
        let a = fake_salt(b"secret-one", "a@x.org");
        assert_eq!(a, fake_salt(b"secret-one", "a@x.org"));
        assert_ne!(a, fake_salt(b"secret-one", "b@x.org"));
        assert_ne!(a, fake_salt(b"secret-two", "a@x.org"));
        let c = code_hash(b"k", UserId(1), "123456");
        assert_ne!(c, code_hash(b"k", UserId(2), "123456"));
        assert_ne!(c, code_hash(b"k", UserId(1), "123457"));
        assert_ne!(
            email_key(b"k", "a@x.org")[..16],
            fake_salt(b"k", "a@x.org")[..]
        );
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(ct_eq(b"same", b"same"));
        assert!(!ct_eq(b"same", b"sama"));
        assert!(!ct_eq(b"same", b"same!"));
    }
}
