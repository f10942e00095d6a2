//! What can go wrong while messaging, on top of [`ClientError`].

use std::time::Duration;

use ferrogram_core::ids::UserId;
use ferrogram_core::ErrorCode;

use crate::error::ClientError;
use crate::error::KeyError;
use crate::store::StoreError;

/// Every failure of the [`Messenger`](crate::Messenger).
#[derive(Debug, thiserror::Error)]
pub enum MessengerError {
    /// The server refused the command (its stable code is in the
    /// [`ClientError::Api`]), or connecting failed (unreachable, not
    /// Ferrogram, session ended).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// No answer to `command` within the request timeout.
    #[error("no answer to {command} within {} s", .after.as_secs())]
    Timeout { command: String, after: Duration },
    /// The connection was lost before the answer came, and the command is not
    /// one that is safe to repeat. It may or may not have been carried out.
    #[error("the connection was lost before the server answered {command}")]
    ConnectionLost { command: String },
    /// The messenger stopped for good: it was closed, or its session ended
    /// (then commands fail with an `unauthorized` [`ClientError::Api`]).
    #[error("offline: {0}")]
    Offline(String),
    /// The server lists other keys for `user_id` than the pinned ones:
    /// nothing is encrypted to them until the user accepts the change.
    #[error(
        "the keys of user {user_id} changed (new fingerprint {new_fingerprint}); compare the \
         safety number with them, then accept the change"
    )]
    KeyChanged {
        user_id: UserId,
        new_fingerprint: String,
    },
    /// No private keys: this session was resumed from a token. Unlock it
    /// with the password first ([`Session::unlock`](crate::Session::unlock)).
    #[error("the private keys are locked: log in (or unlock) with the password first")]
    Locked,
    /// The messenger runs without a local store (commands only).
    #[error("this messenger has no local store")]
    NoStore,
    /// Nothing to accept: no pending key change for this user.
    #[error("no key change of user {0} is waiting to be accepted")]
    NoKeyChange(UserId),
    /// The local store (SQLite) failed; the [`StoreError`] keeps the cause.
    #[error("local message store: {0}")]
    Store(#[from] StoreError),
    /// Keys or sealing failed on this side; the [`KeyError`] keeps the cause.
    #[error("crypto error: {0}")]
    Crypto(#[from] KeyError),
    /// A command could not be encoded as JSON (nothing was sent).
    #[error("cannot encode {command}: {source}")]
    Encode {
        command: String,
        #[source]
        source: serde_json::Error,
    },
}

impl MessengerError {
    /// The server's stable error code, if the server refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Client(e) => e.code(),
            _ => None,
        }
    }

    /// True when the session token is no longer valid.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::Client(e) if e.is_unauthorized())
    }

    /// True for failures that another attempt may fix (timeouts, a lost or
    /// missing connection).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. }
                | Self::ConnectionLost { .. }
                | Self::Client(ClientError::Unreachable { .. })
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use ferrogram_core::ApiError;
    use std::error::Error as _;

    /// What the messenger does with a store failure: `?` into its own error.
    fn open_store(path: &std::path::Path) -> Result<Store, MessengerError> {
        Ok(Store::open(path, UserId(1))?)
    }

    #[test]
    fn a_store_failure_keeps_sqlites_error_as_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = open_store(&path).unwrap_err();
        assert!(matches!(err, MessengerError::Store(_)), "{err:?}");
        let store = err
            .source()
            .and_then(|e| e.downcast_ref::<StoreError>())
            .expect("the messenger error's source is the StoreError");
        assert!(matches!(store, StoreError::Sqlite(_)), "{store:?}");
        let sqlite = store
            .source()
            .and_then(|e| e.downcast_ref::<rusqlite::Error>())
            .expect("the StoreError's source is SQLite's error");
        assert_eq!(
            sqlite.sqlite_error_code(),
            Some(rusqlite::ErrorCode::NotADatabase)
        );
        // The message still says what happened, for a log or the CLI.
        assert!(
            err.to_string()
                .starts_with("local message store: sqlite: file is not a database"),
            "{err}"
        );
    }

    #[test]
    fn codes_and_classes() {
        let refused =
            MessengerError::from(ClientError::Api(ApiError::new(ErrorCode::NotAMember, "no")));
        assert_eq!(refused.code(), Some(ErrorCode::NotAMember));
        assert!(!refused.is_transient());
        assert!(MessengerError::from(ClientError::Api(ApiError::unauthorized())).is_unauthorized());
        let lost = MessengerError::ConnectionLost {
            command: "chat.create_group".into(),
        };
        assert!(lost.is_transient());
        assert!(lost.to_string().contains("chat.create_group"));
        let timeout = MessengerError::Timeout {
            command: "message.send".into(),
            after: Duration::from_secs(30),
        };
        assert!(timeout.to_string().contains("30 s"));
    }
}
