//! Shared fixtures for the crypto tests of this crate's test binary.
//!
//! RSA-3072 key generation takes seconds, so tests share one generated
//! identity (built once per binary) and otherwise use fixed identities stored
//! in `testdata/` (TEST KEYS ONLY, published on purpose). The fixed ones also
//! make the golden vectors reproducible across rsa versions whose key
//! generation might consume randomness differently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::Identity;
use crate::b64::B64;
use rand::rngs::ChaCha20Rng;
use rand::SeedableRng;
use std::sync::OnceLock;

/// ChaCha20 is specified exactly, so seeded streams never change.
pub(crate) fn seeded_rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// One freshly generated identity per test binary.
pub(crate) fn generated_identity() -> &'static Identity {
    static IDENTITY: OnceLock<Identity> = OnceLock::new();
    IDENTITY.get_or_init(|| Identity::generate(&mut seeded_rng(0xF0)).unwrap())
}

const FIXTURES: [&str; 4] = [
    include_str!("testdata/identity-0.b64"),
    include_str!("testdata/identity-1.b64"),
    include_str!("testdata/identity-2.b64"),
    include_str!("testdata/identity-3.b64"),
];

/// Fixed identity number `n` (0 to 3), from `testdata/identity-n.b64`.
pub(crate) fn fixture_identity(n: usize) -> &'static Identity {
    static IDENTITIES: OnceLock<Vec<Identity>> = OnceLock::new();
    let all = IDENTITIES.get_or_init(|| {
        FIXTURES
            .iter()
            .map(|text| Identity::from_bytes(&B64::decode(text.trim()).unwrap()).unwrap())
            .collect()
    });
    &all[n]
}

/// Rewrites the fixture files. Run by hand, only if the identity container
/// format changes: `cargo test -p ferrogram-core regenerate_identity_fixtures -- --ignored`.
#[test]
#[ignore = "rewrites testdata/; run by hand"]
fn regenerate_identity_fixtures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/crypto/testdata");
    for n in 0..FIXTURES.len() {
        let identity = Identity::generate(&mut seeded_rng(1000 + n as u64)).unwrap();
        let text = B64::encode(&identity.to_bytes().unwrap());
        std::fs::write(dir.join(format!("identity-{n}.b64")), text + "\n").unwrap();
    }
}
