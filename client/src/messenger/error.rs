//! What can go wrong while messaging, on top of [`ClientError`].

use std::time::Duration;

use ferrogram_core::ids::UserId;
use ferrogram_core::ErrorCode;

use crate::error::ClientError;

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
    /// The local store (SQLite) failed.
    #[error("local message store: {0}")]
    Store(String),
    /// Sealing or opening an envelope failed on this side.
    #[error("crypto error: {0}")]
    Crypto(String),
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

impl From<rusqlite::Error> for MessengerError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogram_core::ApiError;

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
