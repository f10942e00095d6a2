//! An account's long-term identity: an RSA-PSS (SHA-256) signing key and an
//! RSA-OAEP (SHA-256) encryption key, 3072 bits each.
//!
//! Two keys rather than one, so a signature can never be turned into a
//! decryption (or the reverse) by a mistake in how either is used. The private
//! halves exist in memory only on the owner's devices; at rest and on the
//! server they are sealed with the `wrap_key` (`crypto::sealed`).

use super::{fingerprint, spki, CryptoError, KeyRole};
use crate::b64::B64;
use crate::crypto::encode::Reader;
use crate::proto::PublicKeys;
use rand_core::CryptoRng;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::Oaep;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Modulus size of both keys `Identity::generate` makes.
pub const RSA_BITS: usize = 3072;

/// Serialized identity: magic, version, then both PKCS#8 documents, each with a
/// big-endian u32 length. The magic guards against opening some other sealed
/// secret as an identity.
const CONTAINER_MAGIC: &[u8; 4] = b"FGID";
const CONTAINER_VERSION: u8 = 1;
/// Two 4096-bit PKCS#8 keys are under 5 KiB; refuse anything far larger.
const MAX_CONTAINER_LEN: usize = 16 * 1024;

/// OAEP label of wrapped content keys: binds a ciphertext to its purpose.
pub(crate) const CONTENT_KEY_OAEP_LABEL: &[u8] = b"ferrogram/v1/content-key";

/// The owner's private keys. Not `Clone` (one copy of a secret is enough) and
/// its `Debug` prints the fingerprint only.
pub struct Identity {
    sign: rsa::PrivateKey,
    enc: rsa::PrivateKey,
    public: PublicKeys,
}

impl Identity {
    /// Generates both key pairs. Slow (a second or more per key in release
    /// builds): call it off the UI thread, once per account.
    pub fn generate(rng: &mut impl CryptoRng) -> Result<Self, CryptoError> {
        let sign = rsa::PrivateKey::new(rng, RSA_BITS).map_err(|_| CryptoError::KeyGeneration)?;
        let enc = rsa::PrivateKey::new(rng, RSA_BITS).map_err(|_| CryptoError::KeyGeneration)?;
        Self::from_keys(sign, enc).map_err(|_| CryptoError::KeyGeneration)
    }

    fn from_keys(sign: rsa::PrivateKey, enc: rsa::PrivateKey) -> Result<Self, CryptoError> {
        spki::check_policy(&sign, KeyRole::Sign)?;
        spki::check_policy(&enc, KeyRole::Enc)?;
        let public = PublicKeys {
            sign: B64(spki::encode(sign.as_public_key(), KeyRole::Sign)?),
            enc: B64(spki::encode(enc.as_public_key(), KeyRole::Enc)?),
        };
        if public.sign == public.enc {
            return Err(CryptoError::InvalidPublicKey {
                role: KeyRole::Enc,
                reason: "must differ from the signing key",
            });
        }
        Ok(Self { sign, enc, public })
    }

    /// Both public keys as DER SubjectPublicKeyInfo, as published to the server.
    pub fn public_keys(&self) -> PublicKeys {
        self.public.clone()
    }

    /// The fingerprint of `public_keys()` (see `crypto::fingerprint`).
    pub fn fingerprint(&self) -> String {
        fingerprint::fingerprint(&self.public)
    }

    /// The raw fingerprint: names these keys inside envelopes.
    pub fn key_id(&self) -> [u8; 32] {
        fingerprint::fingerprint_bytes(&self.public)
    }

    /// Serializes both private keys (PKCS#8 DER in a small versioned
    /// container). The result is a secret: seal it before it leaves memory.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let sign = self
            .sign
            .to_pkcs8_der()
            .map_err(|_| CryptoError::PrivateKeyOperation)?;
        let enc = self
            .enc
            .to_pkcs8_der()
            .map_err(|_| CryptoError::PrivateKeyOperation)?;
        let mut out = Zeroizing::new(Vec::with_capacity(
            CONTAINER_MAGIC.len() + 1 + 8 + sign.as_bytes().len() + enc.as_bytes().len(),
        ));
        out.extend_from_slice(CONTAINER_MAGIC);
        out.push(CONTAINER_VERSION);
        for document in [sign.as_bytes(), enc.as_bytes()] {
            let len =
                u32::try_from(document.len()).map_err(|_| CryptoError::PrivateKeyOperation)?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(document);
        }
        Ok(out)
    }

    /// Reads what `to_bytes` wrote, checking both keys against the same policy
    /// as published public keys.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let malformed = CryptoError::MalformedIdentity;
        if bytes.len() > MAX_CONTAINER_LEN {
            return Err(malformed);
        }
        let mut reader = Reader::new(bytes);
        if reader.take(CONTAINER_MAGIC.len()) != Some(CONTAINER_MAGIC.as_slice())
            || reader.u8() != Some(CONTAINER_VERSION)
        {
            return Err(malformed);
        }
        let sign_der = reader
            .u32_prefixed()
            .ok_or(CryptoError::MalformedIdentity)?;
        let enc_der = reader
            .u32_prefixed()
            .ok_or(CryptoError::MalformedIdentity)?;
        if !reader.is_empty() {
            return Err(malformed);
        }
        // PKCS#8 decoding also checks the key's consistency (n = p*q, d inverts e).
        let sign = rsa::PrivateKey::from_pkcs8_der(sign_der).map_err(|_| malformed.clone())?;
        let enc = rsa::PrivateKey::from_pkcs8_der(enc_der).map_err(|_| malformed.clone())?;
        Self::from_keys(sign, enc).map_err(|_| malformed)
    }

    /// RSA-PSS (SHA-256, 32-byte salt) signature over `message`.
    pub(crate) fn sign(
        &self,
        rng: &mut impl CryptoRng,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.sign
            .pss_sign_with_rng::<Sha256, _>(rng, message)
            .map_err(|_| CryptoError::PrivateKeyOperation)
    }

    /// Decrypts a content key wrapped for this identity with RSA-OAEP
    /// (SHA-256). Blinded with the OS generator. Any failure is the same
    /// `Open` error: no padding-oracle detail.
    pub(crate) fn unwrap_content_key(
        &self,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.enc
            .decrypt(
                Oaep::<Sha256>::new_with_label(CONTENT_KEY_OAEP_LABEL),
                wrapped,
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Open)
    }
}

/// Prints the fingerprint, never key material.
impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::crypto::test_support::{fixture_identity, generated_identity, seeded_rng};
    use crate::crypto::validate_public_keys;
    use rsa::traits::PublicKeyParts;

    #[test]
    fn generated_keys_are_3072_bit_and_acceptable_to_the_server() {
        let identity = generated_identity();
        assert_eq!(identity.sign.n().bit_width_vartime(), 3072);
        assert_eq!(identity.enc.n().bit_width_vartime(), 3072);
        assert_ne!(identity.sign, identity.enc);
        validate_public_keys(&identity.public_keys()).unwrap();
    }

    #[test]
    fn bytes_round_trip() {
        let identity = generated_identity();
        let bytes = identity.to_bytes().unwrap();
        let back = Identity::from_bytes(&bytes).unwrap();
        assert_eq!(back.public_keys(), identity.public_keys());
        assert_eq!(back.sign, identity.sign);
        assert_eq!(back.enc, identity.enc);
    }

    #[test]
    fn signatures_verify_with_the_published_key() {
        let identity = fixture_identity(0);
        let signature = identity.sign(&mut seeded_rng(3), b"hello").unwrap();
        let public = spki::decode(identity.public_keys().sign.as_slice(), KeyRole::Sign).unwrap();
        public.pss_verify::<Sha256>(b"hello", &signature).unwrap();
        assert!(public.pss_verify::<Sha256>(b"hellO", &signature).is_err());
    }

    #[test]
    fn content_keys_unwrap_only_with_the_right_label_and_key() {
        let identity = fixture_identity(0);
        let public = spki::decode(identity.public_keys().enc.as_slice(), KeyRole::Enc).unwrap();
        let wrapped = public
            .encrypt(
                &mut seeded_rng(4),
                Oaep::<Sha256>::new_with_label(CONTENT_KEY_OAEP_LABEL),
                &[5u8; 32],
            )
            .unwrap();
        assert_eq!(
            identity.unwrap_content_key(&wrapped).unwrap().as_slice(),
            &[5u8; 32]
        );
        assert_eq!(
            fixture_identity(1)
                .unwrap_content_key(&wrapped)
                .unwrap_err(),
            CryptoError::Open
        );
        let unlabelled = public
            .oaep_encrypt_with_rng::<Sha256, _>(&mut seeded_rng(4), &[5u8; 32])
            .unwrap();
        assert_eq!(
            identity.unwrap_content_key(&unlabelled).unwrap_err(),
            CryptoError::Open
        );
    }

    #[test]
    fn from_bytes_rejects_malformed_containers() {
        let bytes = fixture_identity(0).to_bytes().unwrap();
        let mut wrong_magic = bytes.to_vec();
        wrong_magic[0] ^= 1;
        let mut wrong_version = bytes.to_vec();
        wrong_version[4] = 2;
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        let truncated = bytes[..bytes.len() - 1].to_vec();
        // A byte inside the encryption key's modulus: then n is no longer p*q.
        let mut corrupted_key = bytes.to_vec();
        let sign_len = u32::from_be_bytes(bytes[5..9].try_into().unwrap()) as usize;
        corrupted_key[9 + sign_len + 4 + 60] ^= 0x40;
        for bad in [
            wrong_magic,
            wrong_version,
            trailing,
            truncated,
            corrupted_key,
            Vec::new(),
        ] {
            assert_eq!(
                Identity::from_bytes(&bad).unwrap_err(),
                CryptoError::MalformedIdentity
            );
        }
    }

    #[test]
    fn debug_prints_the_fingerprint_only() {
        let identity = fixture_identity(0);
        let printed = format!("{identity:?}");
        assert!(printed.contains(&identity.fingerprint()));
        assert!(printed.len() < 150, "{printed}");
    }
}
