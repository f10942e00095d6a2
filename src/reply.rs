//! What a client is answered with, whichever way its request came (REST or
//! the WebSocket gateway): the request id that ties an answer to its
//! command-log line, and the public form of an error.

use ferrogram_core::{ApiError, ErrorCode};

/// A fresh random request id (16 hex digits).
pub fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// An error as a client may see it: a 5xx says nothing internal. REST and
/// the WebSocket gateway both answer through this.
pub fn public_error(mut error: ApiError) -> ApiError {
    // quota_exceeded (507) is the client's own doing and says so.
    if error.http_status() >= 500 && error.code != ErrorCode::QuotaExceeded {
        error.message = match error.code {
            ErrorCode::Unavailable => "service temporarily unavailable".to_owned(),
            _ => "internal server error".to_owned(),
        };
        error.retry_after = error
            .retry_after
            .filter(|_| error.code == ErrorCode::Unavailable);
    }
    error
}
