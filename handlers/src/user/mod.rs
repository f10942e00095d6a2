//! `user.*`: other accounts, for logged-in callers only (the old project's
//! open user listing is exactly what we must not repeat).

pub mod get;
pub mod keys;
pub mod search;

use ferrogram_core::{ApiError, ErrorCode};

pub(crate) fn not_found() -> ApiError {
    ApiError::new(ErrorCode::UserNotFound, "no such user")
}
