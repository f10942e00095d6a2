//! What can go wrong talking to a server, in terms a caller can act on.

use ferrogram_core::crypto::envelope::EnvelopeError;
use ferrogram_core::crypto::CryptoError;
use ferrogram_core::error::{ApiError, ErrorBody, ErrorCode};
use ferrogram_core::ids::UserId;

/// Every failure of the client library.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer at all: refused, no route, DNS failure, TLS failure or time-out.
    #[error("cannot reach the server at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    /// Something answered, but it is not a Ferrogram server.
    #[error("{addr} is not a Ferrogram server: {reason}")]
    NotFerrogram { addr: String, reason: String },
    /// The server refused the request with one of its stable error codes.
    #[error("the server refused the request: {0}")]
    Api(ApiError),
    /// Key derivation, key generation, sealing or a key check failed; the
    /// [`KeyError`] says which, with the crypto library's error as its source.
    #[error("crypto error: {0}")]
    Crypto(#[from] KeyError),
    /// The server answered something this client does not understand.
    #[error("unexpected response from the server: {0}")]
    Protocol(String),
    /// The input was refused before anything was sent. The code is the one
    /// the server would have answered with (see `ferrogram_core::validate`).
    #[error("invalid input: {}", .0.message)]
    InvalidInput(ApiError),
}

/// What went wrong with keys, or with sealing and opening on this side. A
/// failure of the crypto library is kept as the
/// [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot derive keys from the password: {0}")]
    Derive(#[source] CryptoError),
    #[error("cannot generate the account's keys: {0}")]
    Generate(#[source] CryptoError),
    #[error("cannot seal the private keys: {0}")]
    SealIdentity(#[source] CryptoError),
    /// A wrong key and a damaged blob look alike (the cause says no more).
    #[error(
        "the account's private keys do not open with the key derived from this password \
         (they were sealed with another password, or damaged)"
    )]
    Open(#[source] CryptoError),
    /// The public keys the server lists for a user are not acceptable.
    #[error("the public keys of user {user_id} are not valid: {source}")]
    InvalidPublicKeys {
        user_id: UserId,
        #[source]
        source: CryptoError,
    },
    /// The server sent a fingerprint that does not match the keys it sent.
    #[error("the server's fingerprint for user {0} does not match its keys")]
    FingerprintMismatch(UserId),
    /// Private keys that do not belong to the account's public keys.
    #[error("the private keys do not belong to this account's public keys")]
    NotTheAccountsKeys,
    /// A message could not be sealed for its recipients.
    #[error("cannot seal the message: {0}")]
    SealMessage(#[source] EnvelopeError),
    /// Key work on a blocking thread panicked or was cancelled.
    #[error("{work} was interrupted: {source}")]
    Interrupted {
        work: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl ClientError {
    /// The stable error code, for server refusals and local input checks.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api(e) | Self::InvalidInput(e) => Some(e.code),
            _ => None,
        }
    }

    /// Seconds to wait before retrying, when the server rate-limited us.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Api(e) => e.retry_after,
            _ => None,
        }
    }

    /// True when the server refused the credentials (wrong password or account).
    pub fn is_invalid_credentials(&self) -> bool {
        self.code() == Some(ErrorCode::InvalidCredentials)
    }

    /// True when the session token is missing, revoked or expired.
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::Unauthorized | ErrorCode::SessionExpired)
        )
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(ApiError::bad_request(message))
    }
}

impl From<ApiError> for ClientError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

/// Turns a non-success response into an error. A well-formed error body gives
/// `Api`; anything else (an HTML page from a proxy, a code this client does not
/// know) is `Protocol`, with a short excerpt of the body for the reader.
pub(crate) fn from_error_response(status: u16, body: &[u8]) -> ClientError {
    if let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body) {
        return ClientError::Api(error);
    }
    let text = String::from_utf8_lossy(body);
    let excerpt: String = text.chars().take(200).collect();
    if excerpt.trim().is_empty() {
        ClientError::Protocol(format!("HTTP {status} without an error body"))
    } else {
        ClientError::Protocol(format!("HTTP {status}: {}", excerpt.trim()))
    }
}

/// Maps a transport failure: no connection or no answer in time is
/// `Unreachable`; anything after a connection was made is `Protocol`.
pub(crate) fn from_transport(addr: &str, err: &reqwest::Error) -> ClientError {
    if err.is_connect() || err.is_timeout() {
        ClientError::Unreachable {
            addr: addr.to_owned(),
            reason: readable_cause(err),
        }
    } else if err.is_decode() || err.is_body() {
        ClientError::Protocol(readable_cause(err))
    } else if err.is_request() {
        // A request that failed before any answer (connection reset, TLS
        // alert): the server cannot be talked to.
        ClientError::Unreachable {
            addr: addr.to_owned(),
            reason: readable_cause(err),
        }
    } else {
        ClientError::Protocol(readable_cause(err))
    }
}

/// The innermost cause tells the most ("Connection refused (os error 111)");
/// reqwest's own outer message repeats the URL.
fn readable_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost: &(dyn std::error::Error + 'static) = err;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    let mut text = innermost.to_string();
    if let Some(e) = err.downcast_ref::<reqwest::Error>() {
        if e.is_timeout() && !text.to_ascii_lowercase().contains("time") {
            text = format!("timed out ({text})");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_becomes_api_error_with_its_code() {
        let body = br#"{"error":{"code":"rate_limited","message":"slow down","retry_after":12}}"#;
        let err = from_error_response(429, body);
        assert_eq!(err.code(), Some(ErrorCode::RateLimited));
        assert_eq!(err.retry_after(), Some(12));
        assert!(matches!(err, ClientError::Api(_)));
        assert!(err.to_string().contains("rate_limited"), "{err}");
    }

    #[test]
    fn every_known_code_maps() {
        for code in ErrorCode::ALL {
            let body = serde_json::to_vec(&ErrorBody {
                error: ApiError::new(*code, "m"),
            })
            .unwrap();
            let err = from_error_response(code.http_status(), &body);
            assert_eq!(err.code(), Some(*code));
        }
    }

    #[test]
    fn credentials_and_auth_helpers() {
        let bad_login = ClientError::Api(ApiError::new(ErrorCode::InvalidCredentials, "no"));
        assert!(bad_login.is_invalid_credentials());
        assert!(!bad_login.is_unauthorized());
        assert!(ClientError::Api(ApiError::unauthorized()).is_unauthorized());
        assert!(ClientError::Api(ApiError::new(ErrorCode::SessionExpired, "x")).is_unauthorized());
        assert!(!ClientError::Protocol("x".into()).is_unauthorized());
    }

    #[test]
    fn unknown_code_or_non_json_is_protocol() {
        let err = from_error_response(418, br#"{"error":{"code":"teapot","message":"x"}}"#);
        assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
        assert_eq!(err.code(), None);
        let html = from_error_response(502, b"<html>Bad Gateway</html>");
        assert!(
            html.to_string().contains("HTTP 502: <html>Bad Gateway"),
            "{html}"
        );
        let empty = from_error_response(500, b"");
        assert!(
            empty.to_string().contains("HTTP 500 without an error body"),
            "{empty}"
        );
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(10_000);
        let err = from_error_response(500, body.as_bytes());
        assert!(err.to_string().len() < 300);
    }

    #[test]
    fn invalid_input_keeps_the_validation_code() {
        let err = ClientError::InvalidInput(ferrogram_core::validate::handle("a").unwrap_err());
        assert_eq!(err.code(), Some(ErrorCode::InvalidHandle));
        assert!(
            err.to_string().starts_with("invalid input: handle"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn refused_connection_is_unreachable() {
        // Bind then drop a listener: its port is free and refuses connections.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        let mapped = from_transport("http://127.0.0.1", &err);
        match mapped {
            ClientError::Unreachable { reason, .. } => {
                assert!(reason.to_lowercase().contains("refused"), "{reason}");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }
}
