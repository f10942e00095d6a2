//! `account.*`: creating an account and verifying its email address.

pub mod prelogin;
pub mod register;
pub mod resend_verification;
pub mod verify;

use ferrogram_core::validate;

/// The per-account rate-limit key of a request that names an email: the
/// normalised address, so `Bob@X.org` and `bob@x.org` share one budget.
pub(crate) fn email_rate_key(raw: &str) -> Option<String> {
    validate::email(raw).ok()
}
