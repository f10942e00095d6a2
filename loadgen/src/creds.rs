//! The credentials file `provision` writes and `run`, `connections` and
//! `sweep` read: the server, the users (id, email, handle, session token,
//! which shared identity they hold) and the shared RSA identities with their
//! private halves. It holds live session tokens and private keys of test
//! accounts, so it is written with mode 0600.

use ferrogram_core::b64::B64;
use ferrogram_core::crypto::Identity;
use ferrogram_core::ids::UserId;
use ferrogram_core::proto::{KdfParams, PublicKeys};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Format version of [`Credentials`].
pub const CREDENTIALS_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub version: u32,
    /// The server's base URL (`http://host:port`).
    pub server: String,
    /// Every user's password (test accounts only).
    pub password: String,
    /// The client key-derivation cost the accounts were made with.
    pub kdf: KdfParams,
    pub identities: Vec<SharedIdentity>,
    pub users: Vec<UserRecord>,
}

/// One RSA identity (signing and encryption key pairs) that several users
/// share: generating RSA-3072 keys costs up to a second each, so `provision`
/// makes a handful and hands them out round-robin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedIdentity {
    pub public_keys: PublicKeys,
    /// `Identity::to_bytes` (both private keys).
    pub private: B64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub user_id: UserId,
    pub email: String,
    pub handle: String,
    /// A live session token (the WebSocket `auth` frame sends it).
    pub token: String,
    /// Index into [`Credentials::identities`].
    pub identity: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a loadgen credentials file: {message}")]
    Format { path: String, message: String },
}

impl Credentials {
    /// The public keys `user` publishes.
    pub fn public_keys(&self, user: &UserRecord) -> &PublicKeys {
        &self.identities[user.identity].public_keys
    }

    /// The private identities, decoded (index as in `identities`).
    pub fn decode_identities(&self) -> Result<Vec<Identity>, String> {
        self.identities
            .iter()
            .map(|i| {
                Identity::from_bytes(i.private.as_slice())
                    .map_err(|e| format!("identity cannot be read: {e}"))
            })
            .collect()
    }

    /// Writes the file with mode 0600 (through a temporary file, so a
    /// crash never leaves half a file).
    pub fn save(&self, path: &Path) -> Result<(), CredentialsError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| CredentialsError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = serde_json::to_vec_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        file.write_all(&text).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    pub fn load(path: &Path) -> Result<Credentials, CredentialsError> {
        let text = std::fs::read(path).map_err(|source| CredentialsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let creds: Credentials =
            serde_json::from_slice(&text).map_err(|e| CredentialsError::Format {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        let format = |message: String| CredentialsError::Format {
            path: path.display().to_string(),
            message,
        };
        if creds.version != CREDENTIALS_VERSION {
            return Err(format(format!(
                "version {} (this loadgen reads {CREDENTIALS_VERSION})",
                creds.version
            )));
        }
        if let Some(user) = creds
            .users
            .iter()
            .find(|u| u.identity >= creds.identities.len())
        {
            return Err(format(format!(
                "user {} names identity {} of {}",
                user.handle,
                user.identity,
                creds.identities.len()
            )));
        }
        Ok(creds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogram_core::proto::KdfAlg;

    pub(crate) fn sample() -> Credentials {
        Credentials {
            version: CREDENTIALS_VERSION,
            server: "http://127.0.0.1:8080".into(),
            password: "loadgen password".into(),
            kdf: KdfParams {
                alg: KdfAlg::Argon2id,
                m_cost_kib: 8,
                t_cost: 1,
                p_cost: 1,
            },
            identities: vec![SharedIdentity {
                public_keys: PublicKeys {
                    sign: B64(vec![1, 2, 3]),
                    enc: B64(vec![4, 5, 6]),
                },
                private: B64(vec![7; 10]),
            }],
            users: (0..3)
                .map(|i| UserRecord {
                    user_id: UserId(i + 1),
                    email: format!("lg-{i}@loadgen.invalid"),
                    handle: format!("lg_{i}"),
                    token: format!("token-{i}"),
                    identity: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn a_saved_file_reads_back_the_same_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let creds = sample();
        creds.save(&path).unwrap();
        assert_eq!(Credentials::load(&path).unwrap(), creds);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // saving again replaces it
        let mut fewer = creds.clone();
        fewer.users.truncate(1);
        fewer.save(&path).unwrap();
        assert_eq!(Credentials::load(&path).unwrap().users.len(), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        std::fs::write(&path, b"{}").unwrap();
        assert!(Credentials::load(&path)
            .unwrap_err()
            .to_string()
            .contains("not a loadgen"));
        let mut creds = sample();
        creds.users[1].identity = 5;
        creds.save(&path).unwrap();
        let err = Credentials::load(&path).unwrap_err().to_string();
        assert!(err.contains("identity 5"), "{err}");
        let mut creds = sample();
        creds.version = 99;
        creds.save(&path).unwrap();
        assert!(Credentials::load(&path)
            .unwrap_err()
            .to_string()
            .contains("version 99"));
        assert!(Credentials::load(&dir.path().join("missing.json")).is_err());
    }
}
