//! How storage and other internal failures become API errors.
//!
//! Inside a handler, work that touches the database returns `Result<_, Fail>`,
//! so `?` works on both storage errors and API errors (for example inside a
//! transaction closure). Converting to [`ApiError`] logs internal failures and
//! hides them from the client.

use ferrogram_core::{ApiError, ErrorCode};
use ferrogram_storage::{StorageError, UniqueField};

pub(crate) enum Fail {
    /// An answer for the client (validation, not found, ...).
    Api(ApiError),
    /// Something broke on our side.
    Storage(StorageError),
}

impl From<StorageError> for Fail {
    fn from(e: StorageError) -> Self {
        Fail::Storage(e)
    }
}

/// Lets transaction code use `?` on rusqlite calls (`tx.commit()?`).
impl From<ferrogram_storage::rusqlite::Error> for Fail {
    fn from(e: ferrogram_storage::rusqlite::Error) -> Self {
        Fail::Storage(StorageError::Sqlite(e))
    }
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail::Api(e)
    }
}

impl From<Fail> for ApiError {
    /// `track_caller` makes the logged location the `?` that gave up, which is
    /// what someone reading the log needs.
    #[track_caller]
    fn from(fail: Fail) -> Self {
        match fail {
            Fail::Api(e) => e,
            Fail::Storage(StorageError::Conflict(UniqueField::Email)) => ApiError::new(
                ErrorCode::EmailTaken,
                "an account with this email already exists",
            ),
            Fail::Storage(StorageError::Conflict(UniqueField::Handle)) => {
                ApiError::new(ErrorCode::HandleTaken, "this handle is taken")
            }
            // Storage errors carry SQL and SQLite messages, never bound values,
            // so they are safe to log.
            Fail::Storage(e) => internal(&e),
        }
    }
}

/// Logs an internal failure (without any request data) and returns the
/// opaque 500 error.
#[track_caller]
pub(crate) fn internal(cause: &dyn std::fmt::Display) -> ApiError {
    let at = std::panic::Location::caller();
    tracing::error!(error = %cause, at = %at, "internal error");
    ApiError::internal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_map_to_stable_codes_and_others_to_internal() {
        let code = |e: StorageError| ApiError::from(Fail::from(e)).code;
        assert_eq!(
            code(StorageError::Conflict(UniqueField::Email)),
            ErrorCode::EmailTaken
        );
        assert_eq!(
            code(StorageError::Conflict(UniqueField::Handle)),
            ErrorCode::HandleTaken
        );
        let internal = ApiError::from(Fail::from(StorageError::Task("boom".into())));
        assert_eq!(internal.code, ErrorCode::Internal);
        assert!(!internal.message.contains("boom"));
        let passthrough = ApiError::from(Fail::from(ApiError::unauthorized()));
        assert_eq!(passthrough.code, ErrorCode::Unauthorized);
    }
}
