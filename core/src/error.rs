//! The one error type every command returns, with stable machine codes.
//!
//! On the wire: `{"error":{"code":"handle_taken","message":"...","retry_after":30}}`.
//! Codes never change meaning once released; clients match on them. Messages are
//! for people and may change. A 5xx message never describes internals.

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($($variant:ident = ($name:literal, $status:literal)),+ $(,)?) => {
        /// Stable error codes. The HTTP status of each is fixed here.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($variant),+
        }

        impl ErrorCode {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name),+
                }
            }

            pub fn http_status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status),+
                }
            }

            pub fn parse(code: &str) -> Option<Self> {
                match code {
                    $($name => Some(ErrorCode::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    BadRequest = ("bad_request", 400),
    InvalidJson = ("invalid_json", 400),
    PayloadTooLarge = ("payload_too_large", 413),
    UnknownCommand = ("unknown_command", 404),
    NotFound = ("not_found", 404),
    MethodNotAllowed = ("method_not_allowed", 405),
    Unauthorized = ("unauthorized", 401),
    SessionExpired = ("session_expired", 401),
    InvalidCredentials = ("invalid_credentials", 401),
    Forbidden = ("forbidden", 403),
    EmailNotVerified = ("email_not_verified", 403),
    RegistrationClosed = ("registration_closed", 403),
    UserNotFound = ("user_not_found", 404),
    SessionNotFound = ("session_not_found", 404),
    HandleTaken = ("handle_taken", 409),
    EmailTaken = ("email_taken", 409),
    AlreadyVerified = ("already_verified", 409),
    InvalidHandle = ("invalid_handle", 422),
    InvalidEmail = ("invalid_email", 422),
    InvalidDisplayName = ("invalid_display_name", 422),
    InvalidBio = ("invalid_bio", 422),
    InvalidKey = ("invalid_key", 422),
    InvalidKdfParams = ("invalid_kdf_params", 422),
    InvalidDeviceName = ("invalid_device_name", 422),
    InvalidCode = ("invalid_code", 422),
    CodeExpired = ("code_expired", 410),
    ChatNotFound = ("chat_not_found", 404),
    MessageNotFound = ("message_not_found", 404),
    NotAMember = ("not_a_member", 403),
    NotChatAdmin = ("not_chat_admin", 403),
    NotMessageAuthor = ("not_message_author", 403),
    InvalidEnvelope = ("invalid_envelope", 422),
    InvalidTitle = ("invalid_title", 422),
    InvalidClientMsgId = ("invalid_client_msg_id", 422),
    TooManyMembers = ("too_many_members", 422),
    InvalidMembers = ("invalid_members", 422),
    NotAGroup = ("not_a_group", 409),
    OwnerMustTransfer = ("owner_must_transfer", 409),
    FrameTooLarge = ("frame_too_large", 413),
    InvalidFrame = ("invalid_frame", 400),
    RateLimited = ("rate_limited", 429),
    // A WebSocket over `limits.max_sockets_per_ip` / `_per_user` / `_per_session`.
    TooManyConnections = ("too_many_connections", 429),
    // A reply larger than `limits.max_reply_bytes`: ask for less (a smaller page).
    ReplyTooLarge = ("reply_too_large", 413),
    Internal = ("internal", 500),
    Unavailable = ("unavailable", 503),
    // A request body that did not arrive within `http.body_timeout_secs` or
    // came below `http.min_body_rate_bytes_per_sec`; the connection is closed.
    RequestTimeout = ("request_timeout", 408),
    // The account's stored messages reached `limits.account_storage_bytes`.
    QuotaExceeded = ("quota_exceeded", 507),
    InvalidCursor = ("invalid_cursor", 400),
    TooManyResumeChats = ("too_many_resume_chats", 400),
    InvitationNotFound = ("invitation_not_found", 404),
}

impl ErrorCode {
    /// A wrong password or code: what rate classes count as a failure.
    pub fn is_failed_proof(self) -> bool {
        matches!(self, ErrorCode::InvalidCredentials | ErrorCode::InvalidCode)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as returned to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds to wait before retrying (with `rate_limited`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// An internal failure. The cause must be logged by the caller; the client
    /// only learns that something went wrong.
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal server error")
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            code: ErrorCode::RateLimited,
            message: format!("too many requests, retry in {retry_after} s"),
            retry_after: Some(retry_after),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(ErrorCode::Unauthorized, "a valid session token is required")
    }

    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The JSON body of every error response: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!((400..600).contains(&code.http_status()));
        }
    }

    #[test]
    fn error_body_shape() {
        let body = ErrorBody {
            error: ApiError::rate_limited(7),
        };
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(v["error"]["code"], "rate_limited");
        assert_eq!(v["error"]["retry_after"], 7);
        let plain = serde_json::to_value(ErrorBody {
            error: ApiError::internal(),
        })
        .unwrap();
        assert!(plain["error"].get("retry_after").is_none());
    }
}
